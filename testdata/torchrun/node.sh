# One "node" of a two-node torchrun job on this machine: sh node.sh NODE_RANK PORT_FILE TRAIN_ARGS...
# c10d rendezvous at 127.0.0.1:<port from PORT_FILE>; node 0 always hosts the rendezvous
# store (is_host), so a restarted node 1 never ends up hosting it, and the node that
# hosts it is the one whose restart every node waits for anyway.
node=$1 port=$(cat "$2")
shift 2
if [ "$node" = 0 ]; then host=1; else host=0; fi
exec python3 "$(dirname "$0")/torchrun.py" --nnodes 2 --node_rank "$node" --nproc_per_node 1 \
  --rdzv_backend c10d --rdzv_endpoint "127.0.0.1:$port" --rdzv_id trainwrap-multinode \
  --rdzv_conf "is_host=$host" --max_restarts 0 --monitor_interval 0.2 \
  "$(dirname "$0")/train.py" "$@"
