package checkpoints

import "strings"

// rootFlags are the arguments training scripts name their output directory with, in
// the order they are preferred when a command has several.
var rootFlags = []string{"--checkpoint-dir", "--checkpoint_dir", "--output_dir", "--output-dir", "--save_dir", "--default_root_dir"}

// RootFromArgs finds the checkpoint root in a training command's own arguments
// (--output_dir, --output-dir, --save_dir, --checkpoint_dir, --default_root_dir, as
// "--flag value" or "--flag=value") and returns it with the flag it came from. When a
// flag is given twice the last one wins, as argparse does. Arguments after a bare "--"
// are not the script's flags and are ignored.
func RootFromArgs(args []string) (root, flag string, ok bool) {
	found := map[string]string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		for _, f := range rootFlags {
			switch {
			case a == f && i+1 < len(args) && args[i+1] != "" && !strings.HasPrefix(args[i+1], "--"):
				found[f] = args[i+1]
				i++
			case strings.HasPrefix(a, f+"=") && len(a) > len(f)+1:
				found[f] = a[len(f)+1:]
			default:
				continue
			}
			break
		}
	}
	for _, f := range rootFlags {
		if v, ok := found[f]; ok {
			return v, f, true
		}
	}
	return "", "", false
}
