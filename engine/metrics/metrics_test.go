package metrics_test

import (
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/moonforge/moonforge/engine/metrics"
	"github.com/moonforge/moonforge/engine/protocol"
)

// find returns the metric of family name whose labels are exactly labels.
func find(t *testing.T, m *metrics.Metrics, name string, labels map[string]string) *dto.Metric {
	t.Helper()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, metric := range f.GetMetric() {
			if len(metric.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range metric.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue next
				}
			}
			return metric
		}
	}
	t.Fatalf("no %s%v", name, labels)
	return nil
}

func TestAnswersCountByMessageAndCode(t *testing.T) {
	m := metrics.New(metrics.Gauges{})
	var wg sync.WaitGroup
	for range 8 { // concurrent first uses of each message
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				m.Answered("EchoReq", 0, time.Millisecond)
				m.Handled("EchoReq", time.Millisecond, 0)
			}
			m.Answered("EchoReq", protocol.RateLimited, time.Millisecond)
			m.Answered("ChatSendReq", 0, time.Millisecond)
			m.Answered("ChatSendReq", protocol.Code(1001), time.Millisecond)
		}()
	}
	wg.Wait()
	for _, c := range []struct {
		msg, code string
		want      float64
	}{
		{"EchoReq", "OK", 800},
		{"EchoReq", "RATE_LIMITED", 8},
		{"ChatSendReq", "OK", 8},
		{"ChatSendReq", protocol.Code(1001).String(), 8},
	} {
		got := find(t, m, "moonforge_requests_total", map[string]string{"msg": c.msg, "code": c.code}).GetCounter().GetValue()
		if got != c.want {
			t.Errorf("requests %s %s: %v, want %v", c.msg, c.code, got, c.want)
		}
	}
	if got := find(t, m, "moonforge_request_seconds", map[string]string{"msg": "EchoReq"}).GetHistogram().GetSampleCount(); got != 808 {
		t.Errorf("EchoReq latencies: %d, want 808", got)
	}
	if got := find(t, m, "moonforge_handler_seconds", map[string]string{"msg": "EchoReq"}).GetHistogram().GetSampleCount(); got != 800 {
		t.Errorf("EchoReq handler times: %d, want 800", got)
	}
}
