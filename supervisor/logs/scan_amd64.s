//go:build !purego

#include "textflag.h"

// The kernel copies 32 bytes at a time, storing each block whole before
// looking at it: a newline's prefix is then written in place after it.
// The caller leaves the room this needs past what is kept (see
// appendLines in format.go).

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
