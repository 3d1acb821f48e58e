//go:build linux

#include "textflag.h"

#define SYS_clone3 435

// func rawClone3(args *cloneArgs, size uintptr) (pid, errno uintptr)
//
// The child returns from the SYSCALL first, on the same stack, and goes on
// to call functions whose frames overwrite the word that held this
// function's return address. So the return address is popped into R12
// (which the kernel preserves, and which the child gets a copy of) before
// the SYSCALL and pushed back after it, by each of the two.
TEXT ·rawClone3(SB),NOSPLIT|NOFRAME,$0-32
	MOVQ	args+0(FP), DI
	MOVQ	size+8(FP), SI
	MOVQ	$SYS_clone3, AX
	POPQ	R12
	SYSCALL
	PUSHQ	R12
	CMPQ	AX, $0xfffffffffffff001
	JLS	ok
	NEGQ	AX
	MOVQ	$0, pid+16(FP)
	MOVQ	AX, errno+24(FP)
	RET
ok:
	MOVQ	AX, pid+16(FP)
	MOVQ	$0, errno+24(FP)
	RET
