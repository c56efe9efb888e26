package classify

import "testing"

func TestNormalize(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
		rank int
	}{
		{"plain", "RuntimeError: boom", "RuntimeError: boom", -1},
		{"torch 2 rank prefix", "[rank3]: torch.OutOfMemoryError: CUDA out of memory.", "torch.OutOfMemoryError: CUDA out of memory.", 3},
		{"torchrun --tee prefix", "[default0]:RuntimeError: NCCL error", "RuntimeError: NCCL error", 0},
		{"srun -l prefix", "12: Traceback (most recent call last):", "Traceback (most recent call last):", 12},
		{"mpirun --tag-output", "[1,5]<stderr>:MemoryError", "MemoryError", 5},
		{"mpirun stdout tag", "[0,2]<stdout>:loss 1.0", "loss 1.0", 2},
		{"ansi colours", "\x1b[31mERROR\x1b[0m: \x1b[1mdisk full\x1b[0m", "ERROR: disk full", -1},
		{"progress bar keeps its last state", " 10%|#         | 1/10\r 20%|##        | 2/10\rRuntimeError: x", "RuntimeError: x", -1},
		{"trailing carriage return", "ValueError: bad\r", "ValueError: bad", -1},
		{"quoted", "> > RuntimeError: quoted twice", "RuntimeError: quoted twice", -1},
		{"iso timestamp", "2026-11-28T23:57:10.123Z RuntimeError: x", "RuntimeError: x", -1},
		{"logging timestamp", "2026-11-28 23:57:10,123 - ERROR - x", "ERROR - x", -1},
		{"bracketed timestamp", "[2026-11-28 23:57:10] x", "x", -1},
		{"timestamp then rank", "2026-11-28T23:57:10.123Z [rank1]: NCCL error", "NCCL error", 1},
		{"quote, timestamp, rank", "> [2026-11-28 23:57:10] 7: boom", "boom", 7},
		{"not a timestamp", "2026-11-28 is the date", "2026-11-28 is the date", -1},
		{"number without colon-space is no rank", "3:boom", "3:boom", -1},
		{"too long to be a rank", "1234567: x", "1234567: x", -1},
		{"bracketed word is no rank", "[rankX]: y", "[rankX]: y", -1},
		{"empty", "", "", -1},
		{"lone escape", "\x1b", "\x1b", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, rank := normalize([]byte(tt.in))
			if string(got) != tt.want || rank != tt.rank {
				t.Errorf("normalize(%q) = %q, rank %d; want %q, rank %d", tt.in, got, rank, tt.want, tt.rank)
			}
		})
	}
}

func TestFinalException(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"RuntimeError: CUDA out of memory.", true},
		{"torch.OutOfMemoryError: CUDA out of memory.", true},
		{"torch.distributed.elastic.multiprocessing.errors.ChildFailedError:", true},
		{"KeyboardInterrupt", true},
		{"MemoryError", true},
		{"omegaconf.errors.ConfigKeyException: x", true},
		{"  File \"train.py\", line 3, in <module>", false},
		{"Error: something", true},
		{"the Error: inside", false},
		{"RuntimeErrors: plural", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := excTypeName([]byte(tt.in), true) != nil; got != tt.want {
			t.Errorf("excTypeName(%q, strict) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
