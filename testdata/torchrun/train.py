"""A tiny CPU DDP trainer (gloo) for trainwrap's torchrun tests.

Every step does a real all-reduce, so a rank that dies or hangs stops the others.
Rank 0 saves a Hugging Face style checkpoint every --save_every steps:
checkpoint-<step>/pytorch_model.bin, then trainer_state.json (written last, atomically),
the file that marks a checkpoint complete. On start the job resumes from
--resume_from_checkpoint, else $TRAINWRAP_RESUME_CHECKPOINT, else the newest complete
checkpoint in --output_dir; rank 0 decides and broadcasts its choice.

Failure injection, only on the attempt given by --fail_attempt ($TRAINWRAP_ATTEMPT,
1 when unset): --kill_rank R --kill_step S makes global rank R SIGKILL itself at step S
(--kill_any: whatever its rank);
--hang_rank R --hang_step S makes it sleep forever at step S.
--oom_above_batch B makes every rank run out of memory in its first step, on every
attempt, while --per_device_train_batch_size is above B: the tests run on CPUs (gloo),
so it raises torch's own torch.cuda.OutOfMemoryError with torch 1.13's message.
"""

import argparse
import datetime
import json
import os
import re
import signal
import sys
import time

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--output_dir", required=True)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--save_every", type=int, default=5)
    p.add_argument("--step_time", type=float, default=0.05, help="seconds of sleep per step")
    p.add_argument("--resume_from_checkpoint", default="")
    p.add_argument("--fail_attempt", type=int, default=1)
    p.add_argument("--kill_rank", type=int, default=-1)
    p.add_argument("--kill_step", type=int, default=-1)
    p.add_argument("--kill_any", action="store_true",
                   help="kill this process at --kill_step whatever its rank (c10d hands out "
                   "ranks in the order the nodes join, so a node cannot name its rank)")
    p.add_argument("--hang_rank", type=int, default=-1)
    p.add_argument("--hang_step", type=int, default=-1)
    p.add_argument("--orphan_worker", action="store_true",
                   help="each rank starts a helper in a session of its own that ignores SIGTERM "
                   "and outlives the rank, like a stuck DataLoader worker")
    p.add_argument("--per_device_train_batch_size", type=int, default=8)
    p.add_argument("--gradient_accumulation_steps", type=int, default=1)
    p.add_argument("--oom_above_batch", type=int, default=-1)
    p.add_argument("--wait_usr1", action="store_true",
                   help="do not finish before SIGUSR1 arrived (the signal test)")
    return p.parse_args(argv)


def log(rank, msg):
    # One write per line: the ranks share torchrun's stdout, and print() writes the
    # text and its newline separately, which interleaves lines of different ranks.
    sys.stdout.write(f"rank {rank} {msg}\n")
    sys.stdout.flush()


def checkpoint_step(path):
    """The global_step of a complete checkpoint, or None when it is not complete."""
    try:
        with open(os.path.join(path, "trainer_state.json")) as f:
            return int(json.load(f)["global_step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def newest_checkpoint(output_dir):
    best, best_step = "", -1
    try:
        names = os.listdir(output_dir)
    except FileNotFoundError:
        return ""
    for name in names:
        if not re.fullmatch(r"checkpoint-\d+", name):
            continue
        path = os.path.join(output_dir, name)
        step = checkpoint_step(path)
        if step is not None and step > best_step:
            best, best_step = path, step
    return best


def resume_point(args):
    for path in (args.resume_from_checkpoint, os.environ.get("TRAINWRAP_RESUME_CHECKPOINT", "")):
        if path:
            return path
    return newest_checkpoint(args.output_dir)


def leftovers():
    """Processes of this run started by an earlier attempt: pid, attempt and command line.

    trainwrap marks every process of the job with TRAINWRAP_RUN_ID and TRAINWRAP_ATTEMPT,
    and must have ended all of an attempt's processes before it starts the next.
    """
    run_id = os.environ.get("TRAINWRAP_RUN_ID", "")
    attempt = os.environ.get("TRAINWRAP_ATTEMPT", "")
    if not run_id:
        return []
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue  # gone, or not ours to read
        if env.get(b"TRAINWRAP_RUN_ID", b"").decode() != run_id:
            continue
        other = env.get(b"TRAINWRAP_ATTEMPT", b"").decode()
        if other != attempt:
            found.append(f"{pid}:attempt={other}:{cmd}")
    return found


def start_orphan_worker():
    # A session of its own and SIGTERM ignored: neither torchrun's killpg of the rank nor
    # a SIGTERM reaches it, so only a supervisor that finds every descendant ends it.
    import subprocess

    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(3600)"
    return subprocess.Popen([sys.executable, "-c", code], start_new_session=True).pid


def out_of_memory(batch):
    # torch 1.13's wording of a CUDA caching allocator failure; the class is torch's.
    raise torch.cuda.OutOfMemoryError(
        f"CUDA out of memory. Tried to allocate {batch * 0.25:.2f} GiB (GPU 0; 79.15 GiB total capacity; "
        "74.12 GiB already allocated; 1.23 GiB free; 76.00 GiB reserved in total by PyTorch) If reserved "
        "memory is >> allocated memory try setting max_split_size_mb to avoid fragmentation.  See "
        "documentation for Memory Management and PYTORCH_CUDA_ALLOC_CONF")


def save(model, output_dir, step):
    path = os.path.join(output_dir, f"checkpoint-{step}")
    os.makedirs(path, exist_ok=True)
    torch.save(model.state_dict(), os.path.join(path, "pytorch_model.bin"))
    tmp = os.path.join(path, "trainer_state.json.tmp")
    with open(tmp, "w") as f:
        json.dump({"global_step": step}, f)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, os.path.join(path, "trainer_state.json"))


def main(argv):
    args = parse_args(argv)
    usr1 = []
    rank = int(os.environ["RANK"])

    def on_usr1(signum, frame):
        usr1.append(signum)
        log(rank, "got USR1")

    signal.signal(signal.SIGUSR1, on_usr1)

    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=60))
    world = dist.get_world_size()
    attempt = int(os.environ.get("TRAINWRAP_ATTEMPT", "1"))
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)

    # Rank 0 alone chooses the checkpoint and tells the others, so every rank resumes from
    # the same one whatever each would have found.
    choice = [None]
    if rank == 0:
        path = resume_point(args)
        step = checkpoint_step(path) if path else 0
        if step is None:
            raise SystemExit(f"train.py: {path} is not a complete checkpoint (no trainer_state.json)")
        choice = [(path, step)]
    dist.broadcast_object_list(choice, src=0)
    path, start_step = choice[0]
    if path:
        model.load_state_dict(torch.load(os.path.join(path, "pytorch_model.bin")))
    log(rank, f"pid {os.getpid()} attempt {attempt} world {world} start_step {start_step} resumed_from {path or '-'}")
    # Newer torch releases (2.x) start each rank in a session of its own; 1.13 in torchrun's.
    log(rank, "leads its own session" if os.getsid(0) == os.getpid() else "shares the session of its launcher")
    if rank == 0:
        left = leftovers()
        log(rank, "leftovers of earlier attempts: " + (" ".join(left) if left else "none"))
    if args.orphan_worker:
        log(rank, f"started worker {start_orphan_worker()} in a session of its own")

    batch, accum = args.per_device_train_batch_size, args.gradient_accumulation_steps
    log(rank, f"batch {batch} accumulation {accum} PYTORCH_CUDA_ALLOC_CONF={os.environ.get('PYTORCH_CUDA_ALLOC_CONF', '-')}")
    ddp = DistributedDataParallel(model)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.01)
    gen = torch.Generator().manual_seed(1000 + rank)
    faulty = attempt == args.fail_attempt
    for step in range(start_step + 1, args.steps + 1):
        if faulty and (rank == args.kill_rank or args.kill_any) and step == args.kill_step:
            log(rank, f"killing itself with SIGKILL at step {step}")
            os.kill(os.getpid(), signal.SIGKILL)
        if faulty and rank == args.hang_rank and step == args.hang_step:
            log(rank, f"hanging at step {step}")
            while True:
                time.sleep(3600)
        if 0 <= args.oom_above_batch < batch:
            out_of_memory(batch)
        opt.zero_grad()
        for _ in range(accum):
            x = torch.randn(batch, 4, generator=gen)
            loss = ddp(x).pow(2).mean() / accum
            loss.backward()  # the all-reduce: every rank waits for every other here
        opt.step()
        log(rank, f"step {step} loss {loss.item():.4f}")
        if rank == 0 and step % args.save_every == 0:
            save(model, args.output_dir, step)
            log(rank, f"saved checkpoint-{step}")
        time.sleep(args.step_time)

    if args.wait_usr1:
        log(rank, "waiting for SIGUSR1")
        deadline = time.monotonic() + 60
        while not usr1 and time.monotonic() < deadline:
            time.sleep(0.05)
        if not usr1:
            raise SystemExit(f"train.py: rank {rank} waited 60 s for SIGUSR1 in vain")
    dist.barrier()
    dist.destroy_process_group()
    log(rank, "done")


if __name__ == "__main__":
    main(sys.argv[1:])
