package main

import (
	"context"
	"testing"
	"time"
)

func TestCPUTimesGrow(t *testing.T) {
	a, ok := cpuTimes()
	if !ok || a.total == 0 || a.idle > a.total {
		t.Fatalf("cpuTimes() = %+v, %v; want a total above its idle part", a, ok)
	}
	time.Sleep(50 * time.Millisecond)
	b, ok := cpuTimes()
	if !ok || b.total < a.total || b.idle < a.idle {
		t.Fatalf("cpuTimes() went back: %+v then %+v (%v)", a, b, ok)
	}
}

func TestSettleStopsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	waited, idle := settle(ctx)
	if idle {
		t.Errorf("settle with a cancelled context reported the machine idle")
	}
	if waited >= settleMax {
		t.Errorf("settle with a cancelled context waited %v, the whole settleMax", waited)
	}
}
