package main

import "errors"

// ClassifyCmd is a placeholder until its owner lands the real command.
type ClassifyCmd struct{}

// Run reports that the command is not built yet.
func (c *ClassifyCmd) Run(g *Globals) error { return errors.New("classify: not built yet") }
