package training

import (
	"bytes"
)

// hfDict reads HF Trainer's log dict. transformers prints it from
// ProgressCallback.on_log (src/transformers/trainer_callback.py, v4.30 to v4.57:
// `self.training_bar.write(str(logs))`, epoch rounded to 2 places) or, without tqdm,
// PrinterCallback.on_log (`print(logs)`); the keys come from Trainer._maybe_log_save_evaluate
// (src/transformers/trainer.py): loss, grad_norm (v4.38+), learning_rate, epoch.
// The values are Python reprs: floats, and where an integration hands over tensors or
// numpy scalars, `tensor(1.23, device='cuda:0')` or `np.float64(0.5)` (numpy 2), and
// strings in forks that pre-format them. JSON-lined loggers print the same dict with
// double quotes. train_loss and train_samples_per_second of the final dict are whole-run
// averages, not per-step values, and are not read; nor are eval_*.
func hfDict(e *emitter, line []byte) {
	i := bytes.IndexByte(line, '{')
	for i >= 0 && i < len(line) {
		q := indexQuote(line, i)
		if q < 0 {
			return
		}
		quote := line[q]
		end := bytes.IndexByte(line[q+1:], quote)
		if end < 0 {
			return
		}
		key := line[q+1 : q+1+end]
		j := skipSpaces(line, q+2+end)
		if j >= len(line) || line[j] != ':' {
			i = q + 2 + end
			continue
		}
		j = skipSpaces(line, j+1)
		v, next, ok := pyValue(line, j)
		i = next
		if !ok {
			continue
		}
		switch string(key) {
		case "loss":
			e.add(Loss, v)
		case "grad_norm":
			e.add(GradNorm, v)
		case "learning_rate":
			e.add(LearningRate, v)
		case "step", "global_step":
			if v >= 0 && v == float64(int64(v)) {
				e.setStep(int64(v))
			}
		}
	}
}

// notTraining tells whether a bar's desc or a key's prefix names validation,
// evaluation, testing, prediction or a sanity check rather than training.
func notTraining(b []byte) bool {
	for _, w := range [...]string{"val", "Val", "eval", "Eval", "test", "Test", "Predict", "predict", "Sanity"} {
		if bytes.Contains(b, []byte(w)) {
			return true
		}
	}
	return false
}

func indexQuote(b []byte, i int) int {
	for ; i < len(b); i++ {
		if b[i] == '\'' || b[i] == '"' {
			return i
		}
	}
	return -1
}

// pyValue reads one value of a Python dict repr at b[i:]: a number, a quoted number,
// or a call such as tensor(1.2, device='cuda:0') whose first argument is the number.
// It returns the index after the value, so that quotes inside it are not taken for
// the next key's.
func pyValue(b []byte, i int) (float64, int, bool) {
	if i >= len(b) {
		return 0, i, false
	}
	if c := b[i]; c == '\'' || c == '"' {
		end := bytes.IndexByte(b[i+1:], c)
		if end < 0 {
			return 0, len(b), false
		}
		v, n, ok := parseNumber(b[i+1:i+1+end], 0)
		return v, i + 2 + end, ok && n == end
	}
	j := i
	for j < len(b) && (isIdent(b[j]) || b[j] == '.') && (j > i || b[j] < '0' || b[j] > '9') {
		j++
	}
	if j > i && j < len(b) && b[j] == '(' {
		v, n, ok := parseNumber(b, skipSpaces(b, j+1))
		// Skip to the call's closing parenthesis; device='cuda:0' holds a quote.
		depth := 1
		for n < len(b) && depth > 0 {
			switch b[n] {
			case '(':
				depth++
			case ')':
				depth--
			}
			n++
		}
		return v, n, ok
	}
	if j > i { // nan, inf, None, True: not a number
		return 0, j, false
	}
	return parseNumber(b, i)
}

// tqdmBar reads a tqdm bar as tqdm.format_meter draws it (tqdm/std.py, v4.x):
// `{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}{postfix}]`,
// where rate_fmt is `{rate:5.2f}{unit}/s`, or `{1/rate:5.2f}s/{unit}` when the rate is
// below one, and the postfix is `, key=value, ...` (read by keyValues). The rate is
// tqdm's exponential moving average (smoothing 0.3), so it follows a slowdown within
// a few redraws. HF Trainer's training bar (ProgressCallback.on_train_begin,
// trainer_callback.py) has no desc and counts optimizer steps; Lightning's
// (TQDMProgressBar, src/lightning/pytorch/callbacks/progress/tqdm_progress.py, v2.x)
// has desc "Epoch N" and counts batches within the epoch, so its step is read as
// N*total+n (micro-batches, under gradient accumulation). Bars with another desc
// (checkpoint shard loading, downloads, validation, sanity checks) are not the
// training's: tqdmBar reads nothing from them and reports them as other, so that
// their postfix (a validation loss=) is not read either. HF's evaluation bar has no
// desc either and is read as if it were the training's: its steps are faster (no
// backward pass), so it cannot pass for a drop, and its n is used only when the
// caller knows no step.
func tqdmBar(e *emitter, line []byte) (other bool) {
	stepTime, rateEnd, ok := tqdmRate(line)
	if !ok {
		return false
	}
	open := bytes.LastIndexByte(line[:rateEnd], '[')
	if open < 0 || bytes.IndexByte(line[open:rateEnd], ':') < 0 { // elapsed is MM:SS
		return false
	}
	// n/total just before the bracket.
	k := open - 1
	for k >= 0 && line[k] == ' ' {
		k--
	}
	tEnd := k + 1
	for k >= 0 && line[k] >= '0' && line[k] <= '9' {
		k--
	}
	var n, total int64
	haveN := false
	if k >= 0 && line[k] == '/' && k+1 < tEnd {
		total, _, _ = parseInt(line, k+1)
		nEnd := k
		k--
		for k >= 0 && line[k] >= '0' && line[k] <= '9' {
			k--
		}
		n, _, haveN = parseInt(line, k+1)
		haveN = haveN && k+1 < nEnd
	}
	head := line[:max(k+1, 0)]
	if p := bytes.LastIndexByte(head, '|'); p >= 0 {
		head = head[:p]
		if p2 := bytes.LastIndexByte(head, '|'); p2 >= 0 {
			head = head[:p2] // the bar itself
		}
	}
	head = bytes.TrimRight(bytes.TrimSpace(head), "0123456789%")
	head = bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(head), []byte(":")))
	epoch := int64(-1)
	if notTraining(head) {
		return true
	}
	if len(head) > 0 {
		ei := bytes.Index(head, []byte("Epoch "))
		if ei < 0 {
			if !bytes.Contains(head, []byte("rain")) { // Train, train, Training
				return true
			}
		} else if v, _, ok := parseInt(head, skipHash(head, ei+len("Epoch "))); ok {
			epoch = v
		}
	}
	if stepTime > 0 {
		e.add(StepTime, stepTime)
	}
	if haveN && e.step < 0 {
		if epoch >= 0 && total > 0 {
			e.setStep(epoch*total + n)
		} else {
			e.setStep(n)
		}
	}
	return false
}

func skipHash(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '#') {
		i++
	}
	return i
}

// tqdmRate finds the rate of a tqdm bar, "12.34it/s" or "1.50s/it" (with tqdm's
// unit_scale prefixes k, M, G), as seconds per iteration.
func tqdmRate(line []byte) (stepTime float64, end int, ok bool) {
	inverse := false
	i := bytes.Index(line, []byte("it/s"))
	if i < 0 {
		i = bytes.Index(line, []byte("s/it"))
		inverse = true
	}
	if i < 0 {
		return 0, 0, false
	}
	end = i + 4
	if end < len(line) && line[end] != ']' && line[end] != ',' {
		return 0, 0, false
	}
	scale := 1.0
	j := i
	if j > 0 {
		switch line[j-1] {
		case 'k':
			scale, j = 1e3, j-1
		case 'M':
			scale, j = 1e6, j-1
		case 'G':
			scale, j = 1e9, j-1
		}
	}
	k := j
	for k > 0 && (line[k-1] >= '0' && line[k-1] <= '9' || line[k-1] == '.') {
		k--
	}
	if k == j || k == 0 || (line[k-1] != ' ' && line[k-1] != ',' && line[k-1] != '[') {
		return 0, 0, false
	}
	v, n, ok := parseNumber(line, k)
	if !ok || n != j || v <= 0 {
		return 0, 0, false
	}
	v *= scale
	if inverse {
		return v, end, true
	}
	return 1 / v, end, true
}

// keyValues reads key=value pairs: DeepSpeed's step line (DeepSpeedEngine._take_model_step
// → print of `step={global_steps}, skipped={skipped_steps}, lr={get_lr()}, mom={get_mom()}`
// every steps_per_print, deepspeed/runtime/engine.py, v0.9 to v0.16), its throughput
// timer (ThroughputTimer.stop, deepspeed/utils/timer.py: `epoch=E/micro_step=M/global_step=G,
// RunningAvgSamplesPerSec=R, CurrSamplesPerSec=C, ...`; before v0.6 `E/M, SamplesPerSec=S`),
// the postfix of Lightning's bar (loss=, train_loss=, train_loss_step=), fairseq's
// progress line (fairseq/logging/progress_bar.py: loss=, lr=, gnorm=, num_updates=), and
// the plain `step=N loss=X` of hand-written loops. Epoch averages (train_loss_epoch),
// validation losses and fairseq's rounded loss_scale are not read.
func keyValues(e *emitter, line []byte) {
	// lr= and grad_norm= alone are also how configs and code print themselves
	// (Namespace(lr=3e-05, ...), adam(lr=1e-5)): they count only on a line that also
	// names a step or a loss, as every training log line above does.
	lr, gn := -1.0, -1.0
	trained := false
	for i := 0; i < len(line); i++ {
		eq := bytes.IndexByte(line[i:], '=')
		if eq < 0 {
			break
		}
		eq += i
		i = eq
		k := eq
		for k > 0 && isIdent(line[k-1]) {
			k--
		}
		if k == eq {
			continue
		}
		key := line[k:eq]
		// Lightning logs under paths: training/loss= is read, validation/loss= is not.
		p := k
		for p > 0 && (isIdent(line[p-1]) || line[p-1] == '/' || line[p-1] == '.') {
			p--
		}
		if p < k && notTraining(line[p:k]) {
			continue
		}
		j := eq + 1
		if j < len(line) && line[j] == '[' {
			j++
		}
		switch string(key) {
		case "loss", "train_loss", "train_loss_step":
			if v, _, ok := parseNumber(line, j); ok {
				e.add(Loss, v)
				trained = true
			}
		case "lr", "learning_rate":
			if v, _, ok := parseNumber(line, j); ok && lr < 0 {
				lr = v
			}
		case "grad_norm", "gnorm":
			if v, _, ok := parseNumber(line, j); ok && gn < 0 {
				gn = v
			}
		case "CurrSamplesPerSec", "SamplesPerSec", "samples_per_second":
			if v, _, ok := parseNumber(line, j); ok {
				e.add(SamplesPerSecond, v)
			}
		case "step", "global_step", "num_updates":
			// Lightning shows logged steps as rounded floats (global_step=3.2e+4): not a step.
			if v, end, ok := parseInt(line, j); ok && (end == len(line) || !bytes.ContainsRune([]byte(".eE"), rune(line[end]))) {
				e.setStep(v)
				trained = true
			}
		}
	}
	if trained && lr >= 0 {
		e.add(LearningRate, lr)
	}
	if trained && gn >= 0 {
		e.add(GradNorm, gn)
	}
}

// deepspeedOverflow reads the fp16 loss scaler's overflow note:
// `[deepspeed] OVERFLOW! Rank 0 Skipping step. Attempted loss scale: 65536, reducing to 32768`
// (DynamicLossScaler.update_scale, deepspeed/runtime/fp16/loss_scaler.py, v0.8 to v0.16;
// "[deepscale]" and float scales in the ZeRO stage2.py of v0.3), and its hysteresis
// variant `Attempted loss scale: 65536, but hysteresis is 2. Reducing hysteresis to 1`,
// where the scale stays.
func deepspeedOverflow(e *emitter, line []byte) {
	const att = "Attempted loss scale: "
	i := bytes.Index(line, []byte(att))
	if i < 0 {
		return
	}
	v, j, ok := parseNumber(line, i+len(att))
	if !ok {
		return
	}
	const red = ", reducing to "
	if bytes.HasPrefix(line[j:], []byte(red)) {
		if w, _, ok := parseNumber(line, j+len(red)); ok {
			v = w
		}
	}
	e.add(LossScale, v)
}

// deepspeedPipe reads the pipeline engine's step line, PipelineEngine.train_batch
// (deepspeed/runtime/pipe/engine.py, v0.5 to v0.16):
// `steps: 10 loss: 2.3456 iter time (s): 0.456 samples/sec: 70.175`.
func deepspeedPipe(e *emitter, line []byte) {
	for _, f := range [...]struct {
		key  string
		name string
	}{{"steps: ", ""}, {" loss: ", Loss}, {"iter time (s): ", StepTime}, {"samples/sec: ", SamplesPerSecond}} {
		i := bytes.Index(line, []byte(f.key))
		if i < 0 {
			continue
		}
		if f.name == "" {
			if n, _, ok := parseInt(line, i+len(f.key)); ok {
				e.setStep(n)
			}
			continue
		}
		if v, _, ok := parseNumber(line, i+len(f.key)); ok {
			e.add(f.name, v)
		}
	}
}

// megatron reads Megatron-LM's training_log line (megatron/training/training.py, core
// v0.5 to v0.9; megatron/training.py before): ` iteration      100/  500000 | consumed
// samples: 25600 | elapsed time per iteration (ms): 432.1 | learning rate: 1.500000E-04 |
// global batch size:   256 | lm loss: 7.012345E+00 | loss scale: 65536.0 | grad norm:
// 1.234 | ...`, and gpt-neox's variant (`samples/sec: 7.799 | iteration 34/10000 | ...
// lm_loss: ...`). Throughput is the global batch over the iteration time. It reports
// whether the line was Megatron's.
func megatron(e *emitter, line []byte) bool {
	i := bytes.Index(line, []byte(" iteration "))
	j := skipSpaces(line, i+len(" iteration "))
	it, j, ok := parseInt(line, j)
	if !ok || j >= len(line) || line[j] != '/' {
		return false
	}
	e.setStep(it)
	var stepTime, batch float64
	rate := false
	rest := line
	for len(rest) > 0 {
		bar := bytes.IndexByte(rest, '|')
		field := rest
		if bar >= 0 {
			field, rest = rest[:bar], rest[bar+1:]
		} else {
			rest = nil
		}
		c := bytes.LastIndex(field, []byte(": "))
		if c < 0 {
			continue
		}
		key := bytes.TrimSpace(field[:c])
		v, _, ok := parseNumber(field, skipSpaces(field, c+2))
		if !ok {
			continue
		}
		switch string(key) {
		case "lm loss", "lm_loss", "loss":
			e.add(Loss, v)
		case "learning rate":
			e.add(LearningRate, v)
		case "loss scale":
			e.add(LossScale, v)
		case "grad norm":
			e.add(GradNorm, v)
		case "elapsed time per iteration (ms)":
			stepTime = v / 1000
			e.add(StepTime, stepTime)
		case "global batch size":
			batch = v
		case "samples/sec": // gpt-neox, Megatron-DeepSpeed
			e.add(SamplesPerSecond, v)
			rate = true
		}
	}
	if !rate && stepTime > 0 && batch > 0 {
		e.add(SamplesPerSecond, batch/stepTime)
	}
	return true
}
