// Package ckptwrite writes checkpoint files the way the frameworks do (torch.save
// archives, safetensors), for the chaos trainer and for tests' fixtures. trainwrap
// itself never writes a checkpoint, so nothing in production imports this package.
package ckptwrite
