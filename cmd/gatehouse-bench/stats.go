package main

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// Metric is one reported figure. Latency metrics carry P50/P99 (milliseconds) and N;
// rates and sizes carry Value. ID is the metric's machine name (snake_case), the key to
// compare runs by: it stays when Name, the label for people, is reworded.
type Metric struct {
	ID    string   `json:"id"`
	Name  string   `json:"name"`
	Unit  string   `json:"unit"`
	Value *float64 `json:"value,omitempty"`
	P50   *float64 `json:"p50,omitempty"`
	P99   *float64 `json:"p99,omitempty"`
	Mean  *float64 `json:"mean,omitempty"`
	Max   *float64 `json:"max,omitempty"`
	N     int      `json:"n,omitempty"`
	Note  string   `json:"note,omitempty"`
}

func f(v float64) *float64 {
	v = math.Round(v*1000) / 1000
	return &v
}

// latency summarises samples as milliseconds.
func latency(id, name string, ds []time.Duration, note string) Metric {
	m := Metric{ID: id, Name: name, Unit: "ms", N: len(ds), Note: note}
	if len(ds) == 0 {
		m.Note = "no samples " + note
		return m
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	m.P50 = f(ms(s[(len(s)-1)/2]))
	m.P99 = f(ms(s[int(math.Ceil(0.99*float64(len(s))))-1]))
	m.Mean = f(ms(sum / time.Duration(len(s))))
	m.Max = f(ms(s[len(s)-1]))
	return m
}

func value(id, name, unit string, v float64, note string) Metric {
	return Metric{ID: id, Name: name, Unit: unit, Value: f(v), Note: note}
}

func (m Metric) String() string {
	if m.P50 != nil {
		return fmt.Sprintf("%-58s p50 %8.3f  p99 %8.3f %-3s (n=%d) %s", m.Name, *m.P50, *m.P99, m.Unit, m.N, m.Note)
	}
	if m.Value != nil {
		return fmt.Sprintf("%-58s %12.3f %s %s", m.Name, *m.Value, m.Unit, m.Note)
	}
	return fmt.Sprintf("%-58s %s", m.Name, m.Note)
}

// Target is one goal of the issue and whether this run met it.
type Target struct {
	ID       string  `json:"id"`
	Name     string  `json:"name"`
	Goal     string  `json:"goal"`
	Measured string  `json:"measured"`
	Met      *bool   `json:"met"`
	Value    float64 `json:"value"`
}
