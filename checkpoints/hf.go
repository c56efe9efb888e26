package checkpoints

import (
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

var (
	hfName    = regexp.MustCompile(`^checkpoint-(\d+)$`)
	rngStateN = regexp.MustCompile(`^rng_state_(\d+)\.pth$`)
)

// hfIncompleteMarker is created by transformers v5's JIT checkpointing while it saves
// on SIGTERM, and removed on success.
const hfIncompleteMarker = "checkpoint-is-incomplete.txt"

// hfLayout is HF Trainer's output_dir/checkpoint-<global_step>/.
type hfLayout struct{}

func (hfLayout) name() string { return LayoutHF }

func (hfLayout) match(dir string, e fs.DirEntry) (int64, bool) {
	if !e.IsDir() {
		return 0, false
	}
	return stepIn(hfName, e.Name())
}

// hfState is the part of trainer_state.json we read.
type hfState struct {
	GlobalStep          *int64 `json:"global_step"`
	BestModelCheckpoint string `json:"best_model_checkpoint"`
	BestGlobalStep      *int64 `json:"best_global_step"`
}

func (hfLayout) check(c *candidate) string {
	if c.has(hfIncompleteMarker) {
		return hfIncompleteMarker + " present: the save was interrupted"
	}
	if !c.has("trainer_state.json") {
		return "trainer_state.json missing (HF writes it last: the save did not finish)"
	}
	var st hfState
	if err := readJSONFile(path.Join(c.Path, "trainer_state.json"), &st); err != nil {
		return fmt.Sprintf("trainer_state.json: %v", err)
	}
	if st.GlobalStep == nil {
		return "trainer_state.json has no global_step"
	}
	if *st.GlobalStep != c.Step {
		return fmt.Sprintf("trainer_state.json global_step %d does not match the name (step %d)", *st.GlobalStep, c.Step)
	}
	if r := hfWeights(c); r != "" {
		return r
	}
	return hfRNGStates(c)
}

// hfWeights checks that the checkpoint holds model weights in one of the forms HF
// saves: a single file, all shards of an index, a PEFT adapter, FSDP's DCP directory,
// or DeepSpeed's tag directory (ZeRO-3 may save no other weights).
func hfWeights(c *candidate) string {
	for _, idx := range []string{"model.safetensors.index.json", "pytorch_model.bin.index.json", "adapter_model.safetensors.index.json"} {
		if c.has(idx) {
			return hfShards(c, idx)
		}
	}
	for _, w := range []string{"model.safetensors", "pytorch_model.bin", "adapter_model.safetensors", "adapter_model.bin", "tf_model.h5", "flax_model.msgpack"} {
		if c.has(w) {
			return ""
		}
	}
	if c.has("latest") || len(dsTags(c)) > 0 {
		return hfDeepSpeed(c)
	}
	for _, f := range c.files {
		i := strings.IndexByte(f.rel, '/')
		if i > 0 && strings.HasPrefix(f.rel, "pytorch_model_fsdp_") {
			dir := f.rel[:i]
			if r := dcpCheck(c.under(dir)); r != "" {
				return dir + ": " + r
			}
			return ""
		}
	}
	return "no model weights (model.safetensors, pytorch_model.bin, an index, an adapter, FSDP or DeepSpeed state)"
}

func hfShards(c *candidate, idx string) string {
	var index struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := readJSONFile(path.Join(c.Path, idx), &index); err != nil {
		return fmt.Sprintf("%s: %v", idx, err)
	}
	if len(index.WeightMap) == 0 {
		return idx + " has an empty weight_map"
	}
	shards := map[string]bool{}
	for _, s := range index.WeightMap {
		shards[s] = true
	}
	var missing []string
	for s := range shards {
		if !c.has(s) {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Sprintf("%s names %d shard(s) that are missing: %s", idx, len(missing), strings.Join(missing, ", "))
	}
	return ""
}

// hfRNGStates checks that per-rank rng states, written by every rank without a
// barrier, run 0..N-1 with none missing.
func hfRNGStates(c *candidate) string {
	var ranks []int
	for _, f := range c.files {
		if m := rngStateN.FindStringSubmatch(f.rel); m != nil {
			n, _ := strconv.Atoi(m[1])
			ranks = append(ranks, n)
		}
	}
	sort.Ints(ranks)
	for i, r := range ranks {
		if r != i {
			return fmt.Sprintf("rng_state_%d.pth missing (have ranks up to %d)", i, ranks[len(ranks)-1])
		}
	}
	return ""
}

// hfDeepSpeed checks the DeepSpeed state HF saves inside its checkpoint: `latest`
// names a tag directory that exists and is complete.
func hfDeepSpeed(c *candidate) string {
	tags := dsTags(c)
	if !c.has("latest") {
		return "DeepSpeed state without a latest file"
	}
	tag, err := readPointer(path.Join(c.Path, "latest"))
	if err != nil {
		return fmt.Sprintf("latest: %v", err)
	}
	if !tags[tag] {
		return fmt.Sprintf("latest names tag %q, which does not exist", tag)
	}
	if r := dsCheckTag(c.under(tag)); r != "" {
		return tag + ": " + r
	}
	return ""
}

// dsTags lists the global_step* directories inside a checkpoint.
func dsTags(c *candidate) map[string]bool {
	out := map[string]bool{}
	for _, f := range c.files {
		if i := strings.IndexByte(f.rel, '/'); i > 0 && strings.HasPrefix(f.rel, "global_step") {
			out[f.rel[:i]] = true
		}
	}
	return out
}
