cd "$(dirname "$0")/../.."; export XDG_RUNTIME_DIR=/tmp
for img in 0 1 2 3 4 5 6 7; do
  r=$(node cli/sgilo.mjs reconstruct --image-index $((40+img)) --operator inpaint-random:0.05 --method ilo --steps 100 --chains 1 --l1-features inf,100,200 --out out/prior-probe/ilo-$img --force 2>&1 | grep "MSE" | tail -1)
  echo "$(date +%T) img $img ilo $r"
done
