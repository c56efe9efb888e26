package training

import (
	"regexp"
	"time"
)

// Standard metric names. The recognisers map each framework's own key to one of these
// ("lm loss" → loss, "samples/sec" → samples_per_second, "elapsed time per iteration
// (ms)" → step_time_seconds, in seconds); a --metric NAME=REGEX keeps the user's NAME.
const (
	Loss             = "loss"
	LearningRate     = "learning_rate"
	GradNorm         = "grad_norm"
	LossScale        = "loss_scale"
	SamplesPerSecond = "samples_per_second"
	StepTime         = "step_time_seconds"
)

// Sample is one value of one metric, as read from one line of output.
type Sample struct {
	Time    time.Time `json:"t"`
	Attempt int       `json:"attempt"`
	Step    int64     `json:"step"` // the job's global step when known, else -1
	Name    string    `json:"name"`
	Value   float64   `json:"v"`
}

// Custom is one --metric NAME=REGEX: the regexp's first group (or the whole match) is
// the value, as a float.
type Custom struct {
	Name string
	Re   *regexp.Regexp
}

// Kinds of anomaly.
const (
	LossSpike         = "loss_spike"          // loss far above the recent median (robust z-score over MAD)
	LossFlat          = "loss_flat"           // loss flat or rising for N steps
	LossScaleCollapse = "loss_scale_collapse" // fp16 loss scale falling toward its minimum
	ThroughputDrop    = "throughput_drop"     // samples/s (or 1/step time) far below the run's own baseline
	Straggler         = "straggler"           // this attempt's step time far above earlier attempts'
)

// Anomaly is one finding of the detector: what, on which metric, at which step, the
// value seen against the baseline it was judged by, and a sentence for people.
type Anomaly struct {
	Time     time.Time `json:"time"`
	Attempt  int       `json:"attempt"`
	Kind     string    `json:"kind"`
	Metric   string    `json:"metric"`
	Step     int64     `json:"step"`
	Value    float64   `json:"value"`
	Baseline float64   `json:"baseline"`
	Message  string    `json:"message"`
}

// SeriesFile is the run directory's file of samples, one JSON Sample per line, kept
// under MaxSeriesBytes by thinning (as observe does for samples.jsonl).
const SeriesFile = "metrics.jsonl"
