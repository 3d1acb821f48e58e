//go:build linux

#include "textflag.h"

#define SYS_clone3 435

// func rawClone3(args *cloneArgs, size uintptr) (pid, errno uintptr)
//
// The return address stays in the link register, which the kernel
// preserves and the child gets a copy of: with NOFRAME it is never stored
// on the stack, where the child's later frames would overwrite it.
TEXT ·rawClone3(SB),NOSPLIT|NOFRAME,$0-32
	MOVD	args+0(FP), R0
	MOVD	size+8(FP), R1
	MOVD	$SYS_clone3, R8
	SVC
	CMN	$4095, R0
	BCC	ok
	NEG	R0, R0
	MOVD	ZR, pid+16(FP)
	MOVD	R0, errno+24(FP)
	RET
ok:
	MOVD	R0, pid+16(FP)
	MOVD	ZR, errno+24(FP)
	RET
