// The web page's program (bundled by cli/serve.ts, served by `sgilo serve`): SGILO and its baselines
// in the browser, on the browser's WebGPU, through the same code as the CLI: the models are
// fetched over HTTP and built by samplers/inverse/setup.ts, the measurement is taken by
// takeMeasurements and the method run by solve (samplers/inverse/reconstruct.ts) with the CLI's arguments in
// the CLI's order, so a run here and `sgilo reconstruct` with the same settings compute the same
// numbers on the same kind of adapter (test/browser.test.ts checks it).
//
// Query parameters preset the form (all optional): image (test image index), operator (a spec),
// method, steps, blocks, chains, seed, preview (every n steps); run=1 starts at once.
// `window.__sgilo` exposes the page's state to automation (phase, adapter, error, result).
//
//   size = 32 (the Fashion model); K = chains; images [3, size, size] or [K, 3, size, size] in [-1, 1]

import { registerShaderTexts } from '../../engine/shader_source.ts';
import { engine, init } from '../../engine/engine.ts';
import { describeAdapter } from '../../engine/device.ts';
import { readSafetensors, writeSafetensors } from '../../engine/io/index.ts';
import { makeOperator, operatorNames, parseOperatorSpec, type MeasurementOperator } from '../../samplers/inverse/operators/index.ts';
import { solve, takeMeasurements } from '../../samplers/inverse/reconstruct.ts';
import type { MethodName } from '../../samplers/inverse/intermediate_layer.ts';
import { measurementPicture, methodConfig, resultTensors, setupFromBytes, stdPicture, type Setup } from '../../samplers/inverse/setup.ts';
import { configFromValues, lookupTuned, parseTunedFile, VARIANTS, type TunedFile, type Variant } from '../../samplers/inverse/tuning.ts';
import { drawImage, drawLossCurve, imageCell } from './draw.ts';
import { fitImage, fromRgba, type Fit, type RawImage } from '../../engine/io/image_fit.ts';
import { checkValue } from '../args.ts';
import { RECONSTRUCT } from '../commands.ts';

/** Every shaders/*.wgsl by name, put in by the bundler (cli/serve.ts: esbuild `define`). */
declare const __SGILO_SHADERS__: Record<string, string>;

interface PageState {
  phase: 'starting' | 'no-webgpu' | 'loading' | 'ready' | 'running' | 'done' | 'error';
  adapter?: string;
  error?: string;
  /** Per tensor of resultTensors (`<method>.samples`, `.mean`, `.std`, `.losses`): the values. */
  result?: Record<string, number[]>;
  settings?: Settings;
  previews: number;
}
const state: PageState = { phase: 'starting', previews: 0 };
(globalThis as unknown as { __sgilo: PageState }).__sgilo = state;

const MODELS = 'models/fashion32/';
const LABELS = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
/** A level to start from per operator family (the spec's level; '' for none). */
const EXAMPLE_LEVEL: Record<string, string> = {
  identity: '', denoise: '0.1', 'inpaint-random': '0.05', 'inpaint-box': '0.5', 'sr-bicubic': '4', 'sr-avgpool': '4',
  colorize: '', 'cs-gaussian': '0.1', 'cs-circulant': '0.1',
};

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const field = (id: string) => $<HTMLInputElement | HTMLSelectElement>(id);

function status(text: string, isError = false): void {
  const el = $('status');
  el.textContent = text;
  el.classList.toggle('error', isError);
}

function fail(e: unknown): void {
  const message = e instanceof Error ? e.message : String(e);
  state.phase = 'error';
  state.error = message;
  status(message, true);
  console.error(e);
}

async function fetchOk(path: string): Promise<Response> {
  const res = await fetch(path);
  if (!res.ok) throw new Error(`HTTP ${res.status} fetching ${path}`);
  return res;
}
const fetchBytes = async (path: string) => new Uint8Array(await (await fetchOk(path)).arrayBuffer());

/** The adapter in one line; browsers often leave `description` empty (describeAdapter's "unknown device"). */
function adapterName(): string {
  const a = engine().gpu.adapter;
  return a.description || a.device ? describeAdapter(a) : `${a.vendor || 'unknown vendor'} ${a.architecture || ''} [${a.isSoftware ? 'software' : 'hardware'}, ${a.runtime}]`.replace(/ +/g, ' ');
}

interface Settings {
  spec: string;
  method: MethodName;
  steps: number;
  blocks: number[];
  chains: number;
  seed: number;
  previewEvery: number;
}

function readSettings(): Settings {
  const family = field('operator').value;
  const level = field('level').value.trim();
  const spec = level ? `${family}:${level}` : family;
  parseOperatorSpec(spec); // a clear error before any work
  // The form is checked against the CLI's own declaration of `reconstruct` (cli/commands.ts).
  const decl = (name: string) => RECONSTRUCT.options.find((o) => o.name === name)!;
  const int = (id: string, name = id) => checkValue(decl(name), field(id).value) as number;
  checkValue(decl('blocks'), field('blocks').value);
  const blocks = field('blocks').value.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  return { spec, method: field('method').value as MethodName, steps: int('steps'), blocks, chains: int('chains'), seed: int('seed'), previewEvery: int('preview', 'steps') };
}

/**
 * The operator as the solver sees it, plus a look at the images it is applied to: every `every`-th
 * call (one call per step) copies the current images [K, 3, size, size] to the host. The copy only
 * adds a read; the numbers the solver computes do not change.
 */
function watchImages(op: MeasurementOperator, every: number, show: (images: Float32Array, call: number) => void): MeasurementOperator {
  let calls = 0;
  const watched = Object.create(op) as MeasurementOperator;
  watched.apply = (x) => {
    const call = calls++;
    if (call % every === 0) engine().read(x.buffer, x.bytes).then((b) => show(new Float32Array(b), call), fail);
    return op.apply(x);
  };
  return watched;
}

let setup: Setup;
let tuned: TunedFile | null = null;
let testImages: { images: Float32Array; labels: Float32Array; count: number };
let uploaded: RawImage | null = null;

/** The chosen image as [3, size, size]: an uploaded one, or a shipped test image (gray replicated). */
function currentImage(size: number): Float32Array {
  if (uploaded) return fitImage(uploaded, size, field('fit').value as Fit);
  const i = Number(field('image').value);
  const gray = testImages.images.subarray(i * size * size, (i + 1) * size * size);
  const out = new Float32Array(3 * size * size);
  for (let c = 0; c < 3; c++) out.set(gray, c * size * size);
  return out;
}

/** An uploaded picture at its own size (brought to the generator's by --fit's rules, engine/io/image_fit.ts). */
async function decodeUpload(file: File): Promise<RawImage> {
  const bitmap = await createImageBitmap(file);
  const canvas = document.createElement('canvas');
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const ctx = canvas.getContext('2d')!;
  ctx.drawImage(bitmap, 0, 0);
  const { data } = ctx.getImageData(0, 0, bitmap.width, bitmap.height);
  return fromRgba(data, bitmap.width, bitmap.height);
}

function showReference(): void {
  const size = setup.generator.config.size;
  drawImage($<HTMLCanvasElement>('reference'), currentImage(size), size);
}

async function run(): Promise<void> {
  const s = readSettings();
  const size = setup.generator.config.size;
  const reference = currentImage(size);
  state.phase = 'running';
  state.settings = s;
  state.result = undefined;
  $<HTMLButtonElement>('run').disabled = true;
  const live = $('live-chains');
  const results = $('results');
  live.replaceChildren();
  results.replaceChildren();
  const liveCanvases = Array.from({ length: s.chains }, (_, k) => imageCell(live, `chain ${k}`, undefined, size));
  // As the CLI: the tuned values of the nearest tuned level of this operator, else the presets.
  const config = (VARIANTS as readonly string[]).includes(s.method) ? configFromValues(s.method as Variant, lookupTuned(tuned, s.method as Variant, s.spec).values, s.steps, s.blocks) : methodConfig(s.method, s.steps, s.blocks);
  const total = s.steps * (1 + config.blocks.length);
  const losses: number[] = [];
  const lossCanvas = $<HTMLCanvasElement>('loss');
  drawLossCurve(lossCanvas, losses, s.steps, total);
  const { operator, noiseStd } = makeOperator(s.spec, [3, size, size], { seed: s.seed });
  try {
    const y = takeMeasurements(operator, reference, 1, noiseStd, s.seed).keep();
    const yHost = await y.readF32();
    drawImage($<HTMLCanvasElement>('measurement'), measurementPicture(operator, yHost, size), size);
    const watched = watchImages(operator, s.previewEvery, (images, call) => {
      const per = 3 * size * size;
      liveCanvases.forEach((c, k) => drawImage(c, images.subarray(k * per, (k + 1) * per), size));
      $('live-step').textContent = `step ${call + 1} of ${total}`;
      state.previews++;
    });
    const t0 = performance.now();
    const r = await solve(y, config, {
      ...setup,
      operator: watched,
      chains: s.chains,
      seed: s.seed,
      onStep: (info) => {
        losses.push(info.loss);
        drawLossCurve(lossCanvas, losses, s.steps, total);
        status(`${s.method}: step ${losses.length} of ${total} (round ${info.round}${info.block ? `, block ${info.block}` : ''}), loss ${info.loss.toExponential(3)}`);
      },
    }, reference);
    y.dispose();
    const img = r.images[0];
    img.samples.forEach((x, k) => imageCell(results, `sample ${k}`, x, size));
    imageCell(results, 'posterior mean', img.mean, size);
    imageCell(results, 'std map', stdPicture(img.std), size);
    const tensors = resultTensors([r], size);
    state.result = Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k, Array.from(t.data as Float32Array)]));
    const blob = new Blob([writeSafetensors(tensors, { adapter: state.adapter ?? '', settings: JSON.stringify(s) }) as Uint8Array<ArrayBuffer>], { type: 'application/octet-stream' });
    const link = $<HTMLAnchorElement>('download');
    link.href = URL.createObjectURL(blob);
    link.hidden = false;
    const seconds = ((performance.now() - t0) / 1000).toFixed(1);
    status(`${s.method}: ${total} steps in ${seconds} s; MSE ${img.mse!.toFixed(4)}, PSNR ${img.psnr!.toFixed(2)} dB (final iterates), posterior-mean MSE ${img.meanMse!.toFixed(4)}`);
    state.phase = 'done';
  } finally {
    operator.dispose?.();
    $<HTMLButtonElement>('run').disabled = false;
  }
}

function fillForm(params: URLSearchParams): void {
  const image = field('image') as HTMLSelectElement;
  for (let i = 0; i < testImages.count; i++) image.add(new Option(`test image ${i}: ${LABELS[testImages.labels[i]] ?? '?'}`, String(i)));
  const op = field('operator') as HTMLSelectElement;
  for (const name of operatorNames()) op.add(new Option(name, name));
  const spec = params.get('operator') ?? 'inpaint-random:0.05';
  const [family, level] = spec.split(/:(.*)/s);
  op.value = family;
  field('level').value = level ?? EXAMPLE_LEVEL[family] ?? '';
  op.addEventListener('change', () => (field('level').value = EXAMPLE_LEVEL[op.value] ?? ''));
  for (const id of ['image', 'method', 'steps', 'blocks', 'chains', 'seed', 'preview']) {
    const v = params.get(id);
    if (v !== null) field(id).value = v;
  }
  field('fit').addEventListener('change', () => showReference());
  image.addEventListener('change', () => {
    uploaded = null;
    showReference();
  });
  $<HTMLInputElement>('upload').addEventListener('change', async (ev) => {
    const file = (ev.target as HTMLInputElement).files?.[0];
    if (!file) return;
    try {
      uploaded = await decodeUpload(file);
      showReference();
    } catch (e) {
      fail(new Error(`${file.name}: not an image this browser can decode (${(e as Error).message})`));
    }
  });
  $('form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    run().catch(fail);
  });
}

async function start(): Promise<void> {
  if (typeof __SGILO_SHADERS__ !== 'undefined') registerShaderTexts(__SGILO_SHADERS__);
  if (!navigator.gpu) {
    state.phase = 'no-webgpu';
    $('no-webgpu').hidden = false;
    $('adapter').textContent = 'no WebGPU';
    status('This browser has no WebGPU (navigator.gpu is missing): nothing can run here.', true);
    return;
  }
  try {
    await init();
  } catch (e) {
    state.phase = 'no-webgpu';
    state.error = `WebGPU is present but gives no usable device: ${(e as Error).message.split('\n')[0]}`;
    $('no-webgpu').hidden = false;
    $('adapter').textContent = 'no WebGPU adapter';
    status(state.error, true);
    return;
  }
  state.adapter = adapterName();
  $('adapter').textContent = `adapter: ${state.adapter}`;
  state.phase = 'loading';
  status('loading the generator, its proxy statistics, the score models and the test images ...');
  // As the CLI: the proxy statistics, the shipped mixture priors (latent, block 0, block 1) and the
  // tuned values, where shipped.
  const listing = (await (await fetchOk(MODELS)).json()) as string[];
  const scoreNames = ['latent', 'block0', 'block1'].map((k) => `mixture-${k}.safetensors`).filter((f) => listing.includes(f));
  const [generator, proxy, images, tunedBytes, ...scores] = await Promise.all([
    fetchBytes(`${MODELS}fashion32-stylegan2.pt`),
    listing.includes('mapping-proxy.safetensors') ? fetchBytes(`${MODELS}mapping-proxy.safetensors`) : null,
    fetchBytes(`${MODELS}test-images.safetensors`),
    listing.includes('tuned.json') ? fetchBytes(`${MODELS}tuned.json`) : null,
    ...scoreNames.map((f) => fetchBytes(`${MODELS}${f}`)),
  ]);
  const files = readSafetensors(images!).tensors;
  const imagesT = files.get('images')!;
  testImages = { images: imagesT.data as Float32Array, labels: files.get('labels')!.data as Float32Array, count: imagesT.shape[0] };
  const scoreFiles = scores.map((bytes, i) => ({ name: `${MODELS}${scoreNames[i]}`, bytes: bytes! }));
  setup = await setupFromBytes({ generator: generator!, proxy, scores: scoreFiles });
  tuned = tunedBytes ? parseTunedFile(new TextDecoder().decode(tunedBytes), `${MODELS}tuned.json`) : null;
  const params = new URLSearchParams(location.search);
  fillForm(params);
  showReference();
  const priors = [...setup.priors.keys()].map((k) => (k === 0 ? 'the latent' : `block ${k}`)).join(', ') || 'none';
  status(`ready: Fashion-MNIST StyleGAN2 (${setup.generator.config.size}x${setup.generator.config.size}); priors for ${priors}; ${tuned ? 'tuned values' : 'preset values'}`);
  state.phase = 'ready';
  $<HTMLButtonElement>('run').disabled = false;
  if (params.get('run') === '1') await run();
}

start().catch(fail);
