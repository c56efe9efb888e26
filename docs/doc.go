// Package docs holds the scheduler recipes (systemd, cron, Kubernetes, SLURM,
// multi-node torchrun) and the observability guide. It has no code; its test keeps the
// exit codes written into the recipes in step with the README's class table.
package docs
