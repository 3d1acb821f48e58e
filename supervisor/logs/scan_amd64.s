//go:build !purego

#include "textflag.h"

// Both kernels copy 32 bytes at a time, storing each block whole before
// looking at it: a byte that needs handling is then overwritten in place.
// The callers leave the room this needs past what is kept (see scan.go).

// func escapeNewlinesAVX2(dst, src []byte) (nsrc, ndst int)
TEXT ·escapeNewlinesAVX2(SB), NOSPLIT, $0-64
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), R8
	MOVQ src_base+24(FP), SI
	MOVQ src_len+32(FP), R9
	MOVQ DI, R10
	MOVQ SI, R11
	LEAQ -34(DI)(R8*1), R12 // the last block may start at R12: 32 bytes and a \n
	LEAQ -32(SI)(R9*1), R13 // the last whole block of src starts at R13

	MOVL $0x22, AX // "
	MOVQ AX, X1
	VPBROADCASTB X1, Y1
	MOVL $0x5c, AX // \
	MOVQ AX, X2
	VPBROADCASTB X2, Y2
	MOVL $0x1f, AX // the last control character
	MOVQ AX, X3
	VPBROADCASTB X3, Y3

loop:
	CMPQ SI, R13
	JGT  done
	CMPQ DI, R12
	JGT  done
	VMOVDQU (SI), Y0
	VMOVDQU Y0, (DI)
	VPCMPEQB  Y0, Y1, Y5
	VPCMPEQB  Y0, Y2, Y6
	VPMINUB   Y0, Y3, Y7 // min(c, 0x1f) == c: c is a control character
	VPCMPEQB  Y0, Y7, Y7
	VPOR      Y5, Y6, Y5
	VPOR      Y5, Y7, Y5
	VPMOVMSKB Y5, AX
	TESTL     AX, AX
	JNZ       hit
	ADDQ      $32, SI
	ADDQ      $32, DI
	JMP       loop

hit:
	BSFL AX, AX
	ADDQ AX, SI
	ADDQ AX, DI
	CMPB (SI), $0x0a
	JNE  done       // any other byte to escape is the caller's
	MOVW $0x6e5c, (DI) // \n
	ADDQ $1, SI
	ADDQ $2, DI
	JMP  loop

done:
	VZEROUPPER
	SUBQ R11, SI
	SUBQ R10, DI
	MOVQ SI, nsrc+48(FP)
	MOVQ DI, ndst+56(FP)
	RET

// func prefixLinesAVX2(dst, src []byte, prefix *[32]byte, plen int) (nsrc, ndst, lines int)
TEXT ·prefixLinesAVX2(SB), NOSPLIT, $0-88
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), R8
	MOVQ src_base+24(FP), SI
	MOVQ src_len+32(FP), R9
	MOVQ prefix+48(FP), AX
	MOVQ plen+56(FP), CX
	VMOVDQU (AX), Y8
	MOVQ DI, R10
	MOVQ SI, R11
	XORQ DX, DX
	LEAQ -64(DI)(R8*1), R12 // a block, then a whole prefix vector
	LEAQ -32(SI)(R9*1), R13

	MOVL $0x0a, AX
	MOVQ AX, X4
	VPBROADCASTB X4, Y4

ploop:
	CMPQ SI, R13
	JGT  pdone
	CMPQ DI, R12
	JGT  pdone
	VMOVDQU   (SI), Y0
	VMOVDQU   Y0, (DI)
	VPCMPEQB  Y0, Y4, Y5
	VPMOVMSKB Y5, AX
	TESTL     AX, AX
	JNZ       phit
	ADDQ      $32, SI
	ADDQ      $32, DI
	JMP       ploop

phit:
	BSFL    AX, AX
	INCQ    AX
	ADDQ    AX, SI
	ADDQ    AX, DI
	VMOVDQU Y8, (DI)
	ADDQ    CX, DI
	INCQ    DX
	JMP     ploop

pdone:
	VZEROUPPER
	SUBQ R11, SI
	SUBQ R10, DI
	MOVQ SI, nsrc+64(FP)
	MOVQ DI, ndst+72(FP)
	MOVQ DX, lines+80(FP)
	RET
