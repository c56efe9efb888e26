// Package training reads the training's own signals from the job's output, with no
// change to the job: the loss, learning rate, grad norm, fp16 loss scale, throughput and
// step time that HF Trainer, Lightning, tqdm, DeepSpeed and Megatron print, plus any
// NAME=REGEX the user names. It keeps them as bounded series in the run directory and
// watches them online for a run that goes bad without crashing: a loss spike, a loss
// flat or rising for many steps, a loss scale collapsing, a throughput drop, a straggling
// attempt.
//
// Like classify and checkpoints it knows nothing of shim; shim feeds it lines and
// publishes what it finds; observe reads the series file for /metrics and the page.
package training
