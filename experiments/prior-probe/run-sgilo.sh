cd "$(dirname "$0")/../.."; export XDG_RUNTIME_DIR=/tmp
M=models/fashion32
for img in 0 1 2 3 4 5 6 7; do
  for cfg in "vit1:--temperature 1 --score $M/score-block0.safetensors --score $M/score-block1.safetensors" "mix1:--temperature 1 --score $M/mixture-block0.safetensors --score $M/mixture-block1.safetensors" "off:--temperature 0"; do
    name=${cfg%%:*}; args=${cfg#*:}
    r=$(node cli/sgilo.mjs reconstruct --image-index $((40+img)) --operator inpaint-random:0.05 --method sgilo --steps 100 --chains 1 $args --out out/prior-probe/$name-$img --force 2>&1 | grep "posterior-mean MSE\|MSE" | tail -1)
    echo "$(date +%T) img $img $name $r"
  done
done
