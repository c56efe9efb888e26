package classify

import (
	"fmt"
	"strings"
)

// healthyLines is typical healthy training output: HF loss dicts, tqdm bars rewritten
// with \r, logging lines, and the warnings every run prints.
func healthyLines() [][]byte {
	var out [][]byte
	add := func(s string) { out = append(out, []byte(s)) }
	for i := 0; i < 200; i++ {
		add(fmt.Sprintf("{'loss': %.4f, 'grad_norm': %.3f, 'learning_rate': 1.9e-05, 'epoch': %.2f}", 2.0/float64(i+1), 0.5+float64(i%7)/10, float64(i)/100))
		bar := make([]string, 0, 4)
		for j := 0; j < 4; j++ {
			bar = append(bar, fmt.Sprintf(" %2d%%|%s%s| %d/1000 [00:%02d<01:40,  9.87it/s]", i%100, strings.Repeat("█", j+1), strings.Repeat(" ", 9-j), i*4+j, j))
		}
		add(strings.Join(bar, "\r"))
		add(fmt.Sprintf("2026-11-28 23:57:%02d,123 - INFO - trainer - step %d: loss=%.3f lr=2.0e-05 tokens/s=51234", i%60, i, 1.0/float64(i+1)))
		add(fmt.Sprintf("[rank%d]: Epoch 1:  %d%%|████▍     | 445/1000 [02:13<02:46,  3.34it/s, v_num=0, train_loss=0.412]", i%8, i%100))
		if i%50 == 0 {
			add("/usr/lib/python3/dist-packages/torch/utils/checkpoint.py:464: UserWarning: torch.utils.checkpoint: the use_reentrant parameter should be passed explicitly.")
			add("  warnings.warn(")
		}
	}
	return out
}
