package workflows

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/client"
)

// metricsRecorder is a metrics handler that keeps what the workflows record: each
// counter's sum, each gauge's last value and each timer's records, by name and tags.
type metricsRecorder struct {
	mu     *sync.Mutex
	tags   map[string]string
	values map[string][]float64 // "name{k=v,…}" → counter increments, gauge updates, timer records (seconds)
}

func newMetricsRecorder() *metricsRecorder {
	return &metricsRecorder{mu: &sync.Mutex{}, values: map[string][]float64{}}
}

func (m *metricsRecorder) WithTags(tags map[string]string) client.MetricsHandler {
	all := maps.Clone(m.tags)
	if all == nil {
		all = map[string]string{}
	}
	maps.Copy(all, tags)
	return &metricsRecorder{mu: m.mu, tags: all, values: m.values}
}

func (m *metricsRecorder) key(name string) string {
	var kv []string
	for _, k := range slices.Sorted(maps.Keys(m.tags)) {
		kv = append(kv, k+"="+m.tags[k])
	}
	return fmt.Sprintf("%s{%s}", name, strings.Join(kv, ","))
}

func (m *metricsRecorder) add(name string, v float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := m.key(name)
	m.values[k] = append(m.values[k], v)
}

func (m *metricsRecorder) Counter(name string) client.MetricsCounter {
	return recordedFunc(func(v float64) { m.add(name, v) })
}
func (m *metricsRecorder) Gauge(name string) client.MetricsGauge {
	return recordedFunc(func(v float64) { m.add(name, v) })
}
func (m *metricsRecorder) Timer(name string) client.MetricsTimer {
	return recordedFunc(func(v float64) { m.add(name, v) })
}

// recorded returns what was recorded under name and tags ("name{k=v,…}", tags sorted),
// the Temporal SDK's own tags left out.
func (m *metricsRecorder) recorded(name string, tags map[string]string) []float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []float64
	for k, v := range m.values {
		n, rest, _ := strings.Cut(k, "{")
		if n != name {
			continue
		}
		match := true
		for tk, tv := range tags {
			match = match && slices.Contains(strings.Split(strings.TrimSuffix(rest, "}"), ","), tk+"="+tv)
		}
		if match {
			out = append(out, v...)
		}
	}
	return out
}

// recordedFunc is a counter, a gauge and a timer that hand what they record to a func.
type recordedFunc func(float64)

func (f recordedFunc) Inc(n int64)            { f(float64(n)) }
func (f recordedFunc) Update(v float64)       { f(v) }
func (f recordedFunc) Record(d time.Duration) { f(d.Seconds()) }
