package chaos

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/trainwrap/trainwrap/internal/ckptwrite"
)

// Sizes of the fake model: small enough to write every few steps, big enough that a
// truncated file is visibly truncated.
const (
	hiddenSize = 64
	vocabSize  = 128
)

// checkpointName is HF Trainer's directory name for the checkpoint of step.
func checkpointName(step int) string { return fmt.Sprintf("checkpoint-%d", step) }

// logEntry is one entry of trainer_state.json's log_history.
type logEntry struct {
	Loss         float64 `json:"loss"`
	GradNorm     float64 `json:"grad_norm"`
	LearningRate float64 `json:"learning_rate"`
	Epoch        float64 `json:"epoch"`
	Step         int     `json:"step"`
}

// trainerState is HF Trainer's trainer_state.json, the file written last: its presence
// is what makes a checkpoint complete.
type trainerState struct {
	BestMetric          *float64   `json:"best_metric"`
	BestModelCheckpoint *string    `json:"best_model_checkpoint"`
	Epoch               float64    `json:"epoch"`
	EvalSteps           int        `json:"eval_steps"`
	GlobalStep          int        `json:"global_step"`
	IsHyperParamSearch  bool       `json:"is_hyper_param_search"`
	IsLocalProcessZero  bool       `json:"is_local_process_zero"`
	IsWorldProcessZero  bool       `json:"is_world_process_zero"`
	LogHistory          []logEntry `json:"log_history"`
	LoggingSteps        int        `json:"logging_steps"`
	MaxSteps            int        `json:"max_steps"`
	NumTrainEpochs      int        `json:"num_train_epochs"`
	SaveSteps           int        `json:"save_steps"`
	TotalFlos           float64    `json:"total_flos"`
	TrainBatchSize      int        `json:"train_batch_size"`
}

// modelTensors are the fake model's weights at step: deterministic, so two runs that
// reach the same step write the same bytes.
func modelTensors(step int) []ckptwrite.Tensor {
	specs := []struct {
		name  string
		shape []int64
	}{
		{"model.embed_tokens.weight", []int64{vocabSize, hiddenSize}},
		{"model.layers.0.mlp.up_proj.weight", []int64{hiddenSize, hiddenSize}},
		{"model.norm.weight", []int64{hiddenSize}},
		{"lm_head.weight", []int64{vocabSize, hiddenSize}},
	}
	out := make([]ckptwrite.Tensor, 0, len(specs))
	for i, s := range specs {
		n := int64(1)
		for _, d := range s.shape {
			n *= d
		}
		data := make([]byte, n*4)
		for j := int64(0); j < n; j++ {
			v := float32(math.Sin(float64(j+int64(i)*7919)) * math.Exp(-float64(step)/100))
			binary.LittleEndian.PutUint32(data[j*4:], math.Float32bits(v))
		}
		out = append(out, ckptwrite.Tensor{Name: s.name, DType: "F32", Shape: s.shape, Data: data})
	}
	return out
}

// optimizerState is a plain torch.optim.AdamW state_dict without tensors.
func optimizerState(step int) map[string]any {
	return map[string]any{
		"state": map[string]any{},
		"param_groups": []any{map[string]any{
			"lr":           learningRate,
			"betas":        []any{0.9, 0.999},
			"eps":          1e-08,
			"weight_decay": 0.0,
			"amsgrad":      false,
			"step":         int64(step),
			"params":       []any{int64(0), int64(1), int64(2), int64(3)},
		}},
	}
}

// modelConfig is the config.json of the fake model.
var modelConfig = map[string]any{
	"architectures":     []string{"LlamaForCausalLM"},
	"hidden_size":       hiddenSize,
	"model_type":        "llama",
	"num_hidden_layers": 1,
	"torch_dtype":       "float32",
	"vocab_size":        vocabSize,
}

// checkpointWriter writes one HF-layout checkpoint. killAfterWeights, when set, is
// called once the weights are on disk and half of optimizer.pt is written: the
// partial-checkpoint fail mode kills the process there.
type checkpointWriter struct {
	dir              string
	step             int
	state            trainerState
	killAfterWeights func()
}

// write writes config.json, model.safetensors, optimizer.pt and scheduler.pt, then
// trainer_state.json last, in the order HF Trainer does.
func (cw checkpointWriter) write() error {
	if err := os.MkdirAll(cw.dir, 0o755); err != nil {
		return fmt.Errorf("create checkpoint %s: %w", cw.dir, err)
	}
	cfg, err := json.MarshalIndent(modelConfig, "", "  ")
	if err != nil {
		return fmt.Errorf("encode config.json: %w", err)
	}
	if err := writeFile(filepath.Join(cw.dir, "config.json"), append(cfg, '\n')); err != nil {
		return err
	}
	var weights bytes.Buffer
	if err := ckptwrite.WriteSafetensors(&weights, modelTensors(cw.step), map[string]string{"format": "pt"}); err != nil {
		return fmt.Errorf("encode model.safetensors: %w", err)
	}
	if err := writeFile(filepath.Join(cw.dir, "model.safetensors"), weights.Bytes()); err != nil {
		return err
	}
	var opt bytes.Buffer
	if err := ckptwrite.WriteTorchSave(&opt, "optimizer", optimizerState(cw.step)); err != nil {
		return fmt.Errorf("encode optimizer.pt: %w", err)
	}
	if cw.killAfterWeights != nil {
		if err := writeFile(filepath.Join(cw.dir, "optimizer.pt"), opt.Bytes()[:opt.Len()/2]); err != nil {
			return err
		}
		cw.killAfterWeights()
	}
	if err := writeFile(filepath.Join(cw.dir, "optimizer.pt"), opt.Bytes()); err != nil {
		return err
	}
	var sched bytes.Buffer
	schedState := map[string]any{"base_lrs": []any{learningRate}, "last_epoch": int64(cw.step), "_step_count": int64(cw.step + 1)}
	if err := ckptwrite.WriteTorchSave(&sched, "scheduler", schedState); err != nil {
		return fmt.Errorf("encode scheduler.pt: %w", err)
	}
	if err := writeFile(filepath.Join(cw.dir, "scheduler.pt"), sched.Bytes()); err != nil {
		return err
	}
	st, err := json.MarshalIndent(cw.state, "", "  ")
	if err != nil {
		return fmt.Errorf("encode trainer_state.json: %w", err)
	}
	return writeFile(filepath.Join(cw.dir, "trainer_state.json"), append(st, '\n'))
}

// writeFile writes and fsyncs one file, as torch.save and json.dump leave it: in place,
// no temporary name.
func writeFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	return nil
}

// resumePoint is what the trainer takes from the checkpoint it resumes from.
type resumePoint struct {
	path  string
	state trainerState
}

// loadResume reads the checkpoint to resume from, as HF Trainer does: it must hold a
// trainer_state.json and weights, or training stops with HF's own error. path "true"
// means the newest checkpoint-N under outputDir.
func loadResume(path, outputDir string) (resumePoint, error) {
	if strings.EqualFold(path, "true") {
		latest, err := latestCheckpoint(outputDir)
		if err != nil {
			return resumePoint{}, err
		}
		path = latest
	}
	raw, err := os.ReadFile(filepath.Join(path, "trainer_state.json"))
	if err != nil {
		return resumePoint{}, fmt.Errorf("ValueError: Can't find a valid checkpoint at %s", path)
	}
	var st trainerState
	if err := json.Unmarshal(raw, &st); err != nil {
		return resumePoint{}, fmt.Errorf("ValueError: Can't find a valid checkpoint at %s (trainer_state.json: %v)", path, err)
	}
	if _, err := os.Stat(filepath.Join(path, "model.safetensors")); err != nil {
		return resumePoint{}, fmt.Errorf("ValueError: Can't find a valid checkpoint at %s", path)
	}
	return resumePoint{path: path, state: st}, nil
}

// latestCheckpoint is the checkpoint-N under dir with the highest N, as
// transformers.trainer_utils.get_last_checkpoint picks it.
func latestCheckpoint(dir string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("ValueError: No valid checkpoint found in output directory (%s): %v", dir, err)
	}
	var steps []int
	for _, e := range entries {
		n, ok := strings.CutPrefix(e.Name(), "checkpoint-")
		if !ok || !e.IsDir() {
			continue
		}
		if s, err := strconv.Atoi(n); err == nil {
			steps = append(steps, s)
		}
	}
	if len(steps) == 0 {
		return "", errors.New("ValueError: No valid checkpoint found in output directory (" + dir + ")")
	}
	sort.Ints(steps)
	return filepath.Join(dir, checkpointName(steps[len(steps)-1])), nil
}
