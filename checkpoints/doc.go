// Package checkpoints finds a training job's checkpoints by layout (HF Trainer,
// Lightning, DeepSpeed, torch DCP, Megatron, or any name with a step number), verifies
// them without reading whole tensors, hashes them into xxh64sum manifests kept outside
// the checkpoint directories, prunes them by policy, and chooses the resume point.
//
// It never writes inside a checkpoint directory: HF Trainer's save_total_limit orders
// checkpoints by directory mtime, so one file written into an old checkpoint would make
// HF delete the newest one.
package checkpoints
