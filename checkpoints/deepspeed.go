package checkpoints

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

var (
	dsName       = regexp.MustCompile(`^global_step(\d+)$`)
	dsOptimShard = regexp.MustCompile(`^(?:bf16_)?zero_pp_rank_(\d+)_mp_rank_(\d+)_optim_states\.pt$`)
	dsZero3Model = regexp.MustCompile(`^zero_pp_rank_(\d+)_mp_rank_(\d+)_model_states\.pt$`)
	dsModel      = regexp.MustCompile(`^mp_rank_(\d+)_model_states\.pt$`)
)

// DeepSpeedPointer is the file DeepSpeed writes next to its tag directories, naming
// the tag to load.
const DeepSpeedPointer = "latest"

// deepspeedLayout is DeepSpeed's <dir>/global_step<N>/ with <dir>/latest.
type deepspeedLayout struct{}

func (deepspeedLayout) name() string { return LayoutDeepSpeed }

func (deepspeedLayout) match(dir string, e fs.DirEntry) (int64, bool) {
	if !e.IsDir() {
		return 0, false
	}
	return stepIn(dsName, e.Name())
}

func (deepspeedLayout) check(c *candidate) string { return dsCheckTag(c.files) }

// dsCheckTag checks one tag directory: model states present, and per model-parallel
// rank one optimizer shard for every data-parallel rank 0..W-1 (the real failure is one
// rank's shard missing), with as many ZeRO-3 model shards.
func dsCheckTag(files []fileInfo) string {
	models := 0
	optim := map[int][]int{} // mp rank -> dp ranks
	zero3 := map[int][]int{}
	for _, f := range files {
		if strings.Contains(f.rel, "/") {
			continue
		}
		if m := dsOptimShard.FindStringSubmatch(f.rel); m != nil {
			dp, _ := strconv.Atoi(m[1])
			mp, _ := strconv.Atoi(m[2])
			optim[mp] = append(optim[mp], dp)
		} else if m := dsZero3Model.FindStringSubmatch(f.rel); m != nil {
			dp, _ := strconv.Atoi(m[1])
			mp, _ := strconv.Atoi(m[2])
			zero3[mp] = append(zero3[mp], dp)
			models++
		} else if dsModel.MatchString(f.rel) {
			models++
		}
	}
	if models == 0 {
		return "no *_model_states.pt file"
	}
	world := -1
	for mp, dps := range optim {
		if r := contiguous(dps, fmt.Sprintf("optimizer shard for data-parallel rank %%d (mp_rank_%02d)", mp)); r != "" {
			return r
		}
		if world >= 0 && len(dps) != world {
			return fmt.Sprintf("model-parallel ranks have different optimizer shard counts (%d and %d)", world, len(dps))
		}
		world = len(dps)
	}
	for mp, dps := range zero3 {
		if r := contiguous(dps, fmt.Sprintf("ZeRO-3 model shard for data-parallel rank %%d (mp_rank_%02d)", mp)); r != "" {
			return r
		}
		if world >= 0 && len(dps) != world {
			return fmt.Sprintf("%d ZeRO-3 model shards but %d optimizer shards", len(dps), world)
		}
	}
	return ""
}

// contiguous checks ranks are exactly 0..len-1; what names the missing one, with %d.
func contiguous(ranks []int, what string) string {
	sort.Ints(ranks)
	for i, r := range ranks {
		if r != i {
			return fmt.Sprintf(what+" is missing", i)
		}
	}
	return ""
}

// readPointer reads a pointer file (DeepSpeed latest, Megatron's tracker): one token,
// maybe with surrounding whitespace. An empty one, left by a crash mid-write, is an
// error.
func readPointer(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", errors.New("empty (a crash while it was being written)")
	}
	if strings.ContainsAny(s, "/\n\x00") || s == "." || s == ".." {
		return "", fmt.Errorf("%q is not a tag name", s)
	}
	return s, nil
}
