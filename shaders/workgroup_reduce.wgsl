// The tree reduction over one workgroup that the row kernels of shaders/layer_norm.wgsl and
// shaders/softmax.wgsl share (included with `// #include <workgroup_reduce>`; no entry points of
// its own). The includer declares the workgroup size `WG` (a power of 2), the element type
// (`alias Partial = ...`) and how two partials combine
// (`fn combine(a: Partial, b: Partial, take_max: bool) -> Partial`).

var<workgroup> partial: array<Partial, WG>;

// Combines one value per invocation; every invocation gets the result. Must be called from
// uniform control flow (it has barriers).
fn workgroup_reduce(v: Partial, lid: u32, take_max: bool) -> Partial {
  partial[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (lid < s) {
      let o = partial[lid + s];
      partial[lid] = combine(partial[lid], o, take_max);
    }
    workgroupBarrier();
  }
  let r = partial[0];
  workgroupBarrier(); // everyone has read partial[0] before the next reduction overwrites it
  return r;
}
