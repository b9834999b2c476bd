package main

import (
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		var ds []time.Duration
		for _, n := range ns {
			ds = append(ds, time.Duration(n)*time.Millisecond)
		}
		return ds
	}
	tests := []struct {
		name             string
		in               []time.Duration
		median, p10, p90 time.Duration
		noise            float64
	}{
		// 11 values 0..100 (shuffled): ranks fall exactly on samples.
		{"odd", ms(50, 0, 100, 10, 90, 20, 80, 30, 70, 40, 60), 50 * time.Millisecond, 10 * time.Millisecond, 90 * time.Millisecond, 1.6},
		// 4 values: median is the mean of the middle two; p10 at rank 0.3, p90 at rank 2.7.
		{"even", ms(40, 10, 30, 20), 25 * time.Millisecond, 13 * time.Millisecond, 37 * time.Millisecond, 0.96},
		{"one", ms(7), 7 * time.Millisecond, 7 * time.Millisecond, 7 * time.Millisecond, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := summarize(tt.in)
			if s.median != tt.median || s.p10 != tt.p10 || s.p90 != tt.p90 {
				t.Errorf("summarize = median %v p10 %v p90 %v, want %v %v %v", s.median, s.p10, s.p90, tt.median, tt.p10, tt.p90)
			}
			if d := s.noise - tt.noise; d > 1e-9 || d < -1e-9 {
				t.Errorf("noise = %v, want %v", s.noise, tt.noise)
			}
		})
	}
}
