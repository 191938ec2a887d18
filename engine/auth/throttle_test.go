package auth

import (
	"fmt"
	"testing"
	"time"
)

func TestThrottle(t *testing.T) {
	th := NewThrottle(ThrottleConfig{Free: 2, Delay: time.Second, Failures: 6, Lockout: time.Minute})
	now := time.Unix(1000, 0)
	th.now = func() time.Time { return now }
	want := []time.Duration{0, 0, time.Second, 2 * time.Second, 4 * time.Second, time.Minute}
	for i, w := range want {
		if got := th.Failed("a"); got != w {
			t.Fatalf("failure %d: wait %v, want %v", i+1, got, w)
		}
		if got := th.Wait("a"); got != w {
			t.Fatalf("after failure %d: Wait %v, want %v", i+1, got, w)
		}
	}
	if th.Wait("b") != 0 {
		t.Fatal("another key waits")
	}
	now = now.Add(59 * time.Second)
	if got := th.Wait("a"); got != time.Second {
		t.Fatalf("locked key after 59s: %v", got)
	}
	now = now.Add(time.Second)
	if got := th.Wait("a"); got != 0 {
		t.Fatalf("after the lockout: %v", got)
	}
	if got := th.Failed("a"); got != time.Minute {
		t.Fatalf("a failure right after the lockout: %v, want the lockout again", got)
	}
	now = now.Add(2 * time.Minute)
	if got := th.Failed("a"); got != 0 {
		t.Fatalf("a failure long after: %v, want a fresh count", got)
	}
	th.Failed("a")
	th.Failed("a")
	th.Succeeded("a")
	if th.Wait("a") != 0 || th.Failed("a") != 0 {
		t.Fatal("a success did not reset the count")
	}
}

func TestThrottleBoundedKeys(t *testing.T) {
	th := NewThrottle(ThrottleConfig{MaxKeys: 100})
	for i := range 1000 {
		th.Failed(fmt.Sprint("ip-", i))
	}
	if n := len(th.keys); n > 100 {
		t.Fatalf("%d keys kept, limit 100", n)
	}
}
