"""torchrun for the tests: Debian's python3-torch 1.13 with one function mended.

On Python 3.11, iterating an IntFlag yields only its single-bit members, so torch
1.13's Std.from_str returns None for "0" (NONE) and "3" (ALL), and torchrun dies on
its own default --redirects/--tee with "AttributeError: 'NoneType' ..." in to_map.
This wrapper replaces that one function, then runs torch.distributed.run.main
exactly as the torchrun console script does.

With TORCHRUN_RANK_SESSIONS=1 it also starts each rank in a session of its own, as
newer torch releases do, so one package covers both process layouts.
"""

import os
import re
import subprocess
import sys

from torch.distributed.elastic.multiprocessing import api


def _std_from_str(cls, vm):
    # Same grammar and errors as torch's own from_str; only the lookup differs.
    if re.match(api._VALUE_REGEX, vm):
        return cls(int(vm))
    if re.match(api._MAPPING_REGEX, vm):
        return {int(i): cls(int(v)) for i, v in (m.split(":") for m in vm.split(","))}
    raise ValueError(f"{vm} does not match: <{api._VALUE_REGEX}> or <{api._MAPPING_REGEX}>")


def _start_ranks_in_sessions():
    # Newer torch releases (2.x) start every rank with start_new_session=True, so each
    # rank leads a session and process group of its own; 1.13 leaves the ranks in
    # torchrun's group.
    # TORCHRUN_RANK_SESSIONS=1 gives the tests the newer layout from the old package.
    def _popen(self, args, env):
        return subprocess.Popen(args=args, env=env, stdout=self._stdout, stderr=self._stderr,
                                start_new_session=True)

    api.SubprocessHandler._popen = _popen


def main():
    api.Std.from_str = classmethod(_std_from_str)
    if os.environ.get("TORCHRUN_RANK_SESSIONS") == "1":
        _start_ranks_in_sessions()
    from torch.distributed.run import main as torchrun_main

    return torchrun_main()


if __name__ == "__main__":
    sys.exit(main())
