// Command classifygen writes the input of bench/classify.sh: a log of typical healthy
// training output (HF loss dicts, \r-rewritten tqdm bars, logging lines, Lightning bars
// with rank prefixes, a warning now and then) of about -mb MiB, and the classifier's
// literals as extended regular expressions, one per line, for grep -E -f.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/trainwrap/trainwrap/classify"
)

func main() {
	out := flag.String("out", ".", "folder to write healthy.log and patterns.ere into")
	mb := flag.Int("mb", 512, "size of healthy.log in MiB")
	flag.Parse()
	if err := write(*out, int64(*mb)<<20); err != nil {
		fmt.Fprintf(os.Stderr, "classifygen: %v\n", err)
		os.Exit(1)
	}
}

func write(dir string, size int64) error {
	var pats strings.Builder
	for _, l := range classify.Literals() {
		pats.WriteString(regexp.QuoteMeta(l))
		pats.WriteByte('\n')
	}
	if err := os.WriteFile(filepath.Join(dir, "patterns.ere"), []byte(pats.String()), 0o644); err != nil {
		return fmt.Errorf("write patterns: %w", err)
	}
	path := filepath.Join(dir, "healthy.log")
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var n int64
	for i := 0; n < size; i++ {
		for _, l := range block(i) {
			k, _ := w.WriteString(l)
			w.WriteByte('\n')
			n += int64(k) + 1
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

// block is one step's worth of output.
func block(i int) []string {
	bar := make([]string, 0, 4)
	for j := 0; j < 4; j++ {
		bar = append(bar, fmt.Sprintf(" %2d%%|%s%s| %d/1000 [00:%02d<01:40,  9.87it/s]", i%100, strings.Repeat("█", j+1), strings.Repeat(" ", 9-j), i*4+j, j))
	}
	out := []string{
		fmt.Sprintf("{'loss': %.4f, 'grad_norm': %.3f, 'learning_rate': 1.9e-05, 'epoch': %.2f}", 2.0/float64(i%1000+1), 0.5+float64(i%7)/10, float64(i%1000)/100),
		strings.Join(bar, "\r"),
		fmt.Sprintf("2026-11-28 23:57:%02d,123 - INFO - trainer - step %d: loss=%.3f lr=2.0e-05 tokens/s=51234", i%60, i, 1.0/float64(i%1000+1)),
		fmt.Sprintf("[rank%d]: Epoch 1:  %d%%|████▍     | 445/1000 [02:13<02:46,  3.34it/s, v_num=0, train_loss=0.412]", i%8, i%100),
	}
	if i%50 == 0 {
		out = append(out, "/usr/lib/python3/dist-packages/torch/utils/checkpoint.py:464: UserWarning: torch.utils.checkpoint: the use_reentrant parameter should be passed explicitly.", "  warnings.warn(")
	}
	return out
}
