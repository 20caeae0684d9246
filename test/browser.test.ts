// The web page in headless Chromium: Debian's `chromium` driven by playwright-core on the
// SwiftShader WebGPU adapter (flags: docs/design.md, "Runtime facts"). The page (served by
// cli/serve.ts, bundled in memory) runs a short SGILO reconstruction (6 steps); the Node CLI runs
// the same seed and settings on SwiftShader too (VK_ICD_FILENAMES = chromium-common's ICD), and the
// samples, mean, std map and losses must agree to max|a-b|/max|b| <= 1e-3. The page is also checked
// without WebGPU (its message), the server's routes, and a screenshot is written to
// out/browser-screenshot.png (SGILO_SCREENSHOT overrides the path; the README's picture is made
// with SGILO_SCREENSHOT=docs/browser-screenshot.png, so a test run leaves tracked files alone).
//
// Without Chromium (or its SwiftShader ICD) the tests are skipped with the reason printed, unless
// SGILO_REQUIRE_BROWSER=1 (set by .ci/run, where `npm run provision` installs chromium): then that
// is a failure. SGILO_CHROMIUM overrides /usr/bin/chromium.
//
// The browser and the Node run happen at import time (top-level await; test/run.ts awaits each
// file's import), so the rows below only inspect their results.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startWebServer, type WebServer } from '../cli/serve.ts';
import { ROOT, SHORT_RUN, TOLERANCE, adapterKind, agreement, formatAgreement, processFailure, readResult, reconstructArgs, runProcess, type ProcessResult, type RunResult } from './reconstruct_runs.ts';

const CHROMIUM = process.env.SGILO_CHROMIUM ?? '/usr/bin/chromium';
const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
const REQUIRED = process.env.SGILO_REQUIRE_BROWSER === '1';
const SCREENSHOT = process.env.SGILO_SCREENSHOT ?? join(ROOT, 'out/browser-screenshot.png');
/** WebGPU on SwiftShader (no GPU here), headless, no sandbox (CI runs as root), no network chatter. */
export const CHROMIUM_FLAGS = [
  '--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-webgpu-adapter=swiftshader',
  '--no-sandbox', '--disable-dev-shm-usage', '--no-first-run', '--no-default-browser-check',
  '--disable-background-networking', '--disable-component-update', '--disable-domain-reliability', '--disable-sync',
];
const TIMEOUT_MS = 240_000; // SwiftShader on 2 shared cores; each run takes 15-40 s

const test = suite('browser');

interface PageState {
  phase: string;
  adapter?: string;
  error?: string;
  result?: Record<string, number[]>;
  previews: number;
}

interface BrowserRun {
  state?: PageState;
  adapterText?: string;
  noWebgpu?: { phase: string; messageVisible: boolean; status: string };
  routes?: { path: string; status: number; type: string; bytes: number }[];
  logs: string[];
  error?: string;
  seconds: number;
}

async function pageState(page: Page): Promise<PageState> {
  return page.evaluate(() => (globalThis as unknown as { __sgilo: PageState }).__sgilo);
}

async function checkRoutes(server: WebServer): Promise<BrowserRun['routes']> {
  const paths = ['/', '/main.js', '/style.css', '/models/fashion32/', '/models/fashion32/mapping-proxy.safetensors', '/models/../package.json', '/cli/serve.ts'];
  const out = [];
  for (const path of paths) {
    const res = await fetch(new URL(path, server.url));
    out.push({ path, status: res.status, type: res.headers.get('content-type') ?? '', bytes: (await res.arrayBuffer()).byteLength });
  }
  return out;
}

async function runBrowser(server: WebServer): Promise<BrowserRun> {
  const t0 = performance.now();
  const run: BrowserRun = { logs: [], seconds: 0 };
  let browser: Browser | undefined;
  try {
    run.routes = await checkRoutes(server);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS, timeout: 60_000 });
    const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
    page.on('console', (m) => run.logs.push(`console.${m.type()}: ${m.text().slice(0, 500)}`));
    page.on('pageerror', (e) => run.logs.push(`pageerror: ${e.message}`));
    const r = SHORT_RUN;
    const query = new URLSearchParams({ image: String(r.image), operator: r.operator, method: r.method, steps: String(r.steps), blocks: r.blocks, chains: String(r.chains), seed: String(r.seed), preview: '1', run: '1' });
    await page.goto(`${server.url}?${query}`);
    // --dump-dom would return before the GPU promises settle: wait for the page to say it is done.
    await page.waitForFunction(() => ['done', 'error', 'no-webgpu'].includes((globalThis as unknown as { __sgilo?: PageState }).__sgilo?.phase ?? ''), null, { timeout: TIMEOUT_MS, polling: 250 });
    run.state = await pageState(page);
    run.adapterText = (await page.textContent('#adapter')) ?? '';
    mkdirSync(dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });

    // The same page where WebGPU is missing.
    const bare = await browser.newPage();
    await bare.addInitScript(() => Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined, configurable: true }));
    await bare.goto(server.url);
    await bare.waitForFunction(() => (globalThis as unknown as { __sgilo?: PageState }).__sgilo?.phase !== 'starting', null, { timeout: 60_000 });
    run.noWebgpu = { phase: (await pageState(bare)).phase, messageVisible: await bare.isVisible('#no-webgpu'), status: (await bare.textContent('#status')) ?? '' };
  } catch (e) {
    run.error = (e as Error).message;
  } finally {
    await browser?.close();
    run.seconds = (performance.now() - t0) / 1000;
  }
  return run;
}

const logTail = (run: BrowserRun) => (run.logs.length ? `\npage log:\n${run.logs.slice(-20).join('\n')}` : '');

const chromiumMissing = !existsSync(CHROMIUM) ? `no Chromium at ${CHROMIUM}` : !existsSync(SWIFTSHADER_ICD) ? `no SwiftShader ICD at ${SWIFTSHADER_ICD}` : null;
if (chromiumMissing) {
  const reason = `${chromiumMissing}: install Debian's chromium (\`apt-get install -y chromium\`; \`npm run provision\` does it as root) or set SGILO_CHROMIUM`;
  if (REQUIRED) test('Chromium with SwiftShader is installed (SGILO_REQUIRE_BROWSER=1)', () => assert.unreachable(reason));
  else {
    console.log(`browser tests skipped: ${reason}`);
    test.skip(`browser tests (${reason})`, () => {});
  }
} else {
  const started = Date.now();
  const server = await startWebServer({ port: 0 });
  const out = mkdtempSync(join(tmpdir(), 'sgilo-browser-'));
  const args = reconstructArgs(out);
  // Node on SwiftShader, in parallel with the browser (their idle phases overlap).
  const nodeRunning: Promise<ProcessResult> = runProcess(process.execPath, ['cli/sgilo.mjs', ...args], { ...process.env, VK_ICD_FILENAMES: SWIFTSHADER_ICD }, TIMEOUT_MS);
  const browser = await runBrowser(server);
  const node = await nodeRunning;
  await server.close();
  const nodeFailure = processFailure(`node cli/sgilo.mjs ${args.join(' ')} (VK_ICD_FILENAMES=${SWIFTSHADER_ICD})`, node, TIMEOUT_MS);
  let nodeResult: RunResult | undefined;
  if (!nodeFailure) nodeResult = readResult(out);
  rmSync(out, { recursive: true, force: true });
  console.log(`browser run ${browser.seconds.toFixed(1)} s, Node run ${node.seconds.toFixed(1)} s`);

  test('sgilo serve: the page, the bundle, model files and folder lists with MIME types; nothing outside models/', () => {
    assert.ok(browser.routes, `the server did not answer: ${browser.error}`);
    const by = new Map(browser.routes!.map((r) => [r.path, r]));
    const expect = (path: string, status: number, type?: RegExp) => {
      const r = by.get(path)!;
      assert.is(r.status, status, `${path}: status`);
      if (type) assert.match(r.type, type, `${path}: content type`);
    };
    expect('/', 200, /^text\/html/);
    expect('/main.js', 200, /^text\/javascript/);
    expect('/style.css', 200, /^text\/css/);
    expect('/models/fashion32/', 200, /^application\/json/);
    expect('/models/fashion32/mapping-proxy.safetensors', 200, /^application\/octet-stream/);
    assert.is(by.get('/models/fashion32/mapping-proxy.safetensors')!.bytes, readFileSync(join(ROOT, 'models/fashion32/mapping-proxy.safetensors')).byteLength);
    expect('/models/../package.json', 404);
    expect('/cli/serve.ts', 404);
  });

  test('the page finishes a 6-step SGILO reconstruction in headless Chromium, showing live previews', () => {
    assert.ok(!browser.error, `browser: ${browser.error}${logTail(browser)}`);
    const s = browser.state!;
    assert.is(s.phase, 'done', `page phase "${s.phase}": ${s.error ?? ''}${logTail(browser)}`);
    const total = SHORT_RUN.steps * 2;
    assert.is(s.result?.[`${SHORT_RUN.method}.losses`]?.length, total, 'one loss per step');
    assert.is(s.result?.[`${SHORT_RUN.method}.samples`]?.length, SHORT_RUN.chains * 3 * 32 * 32, 'samples [K, 3, 32, 32]');
    assert.ok(s.result![`${SHORT_RUN.method}.samples`].every(Number.isFinite), 'finite samples');
    assert.ok(s.previews >= total - 1, `live previews: ${s.previews} for ${total} steps (every step asked)`);
  });

  test('the page names its adapter: SwiftShader', () => {
    assert.ok(browser.state?.adapter, `no adapter in the page state${logTail(browser)}`);
    assert.match(browser.state!.adapter!, /swiftshader/i);
    assert.ok(browser.adapterText?.includes(browser.state!.adapter!), `#adapter shows "${browser.adapterText}"`);
  });

  test('the page without WebGPU says so', () => {
    assert.ok(browser.noWebgpu, `not checked: ${browser.error}`);
    assert.is(browser.noWebgpu!.phase, 'no-webgpu');
    assert.ok(browser.noWebgpu!.messageVisible, 'the #no-webgpu message is visible');
    assert.match(browser.noWebgpu!.status, /no WebGPU/);
  });

  test('the Node CLI runs the same reconstruction on SwiftShader', () => {
    assert.ok(!nodeFailure, nodeFailure ?? '');
    assert.is(adapterKind(nodeResult!.adapter), 'swiftshader', `Node's adapter: ${nodeResult!.adapter}`);
  });

  test(`browser vs Node (both SwiftShader): samples, mean, std map and losses agree to ${TOLERANCE} relative`, () => {
    assert.ok(nodeResult && browser.state?.result, `a run is missing: ${nodeFailure ?? browser.state?.error ?? browser.error}`);
    const page = new Map(Object.entries(browser.state!.result!));
    const rows = agreement(page, nodeResult!.tensors);
    console.log(`browser vs Node, max|a-b|/max|b| per tensor:\n${formatAgreement(rows)}`);
    assert.is(rows.length, 4, 'samples, mean, std, losses');
    const bad = rows.filter((r) => !(r.rel <= TOLERANCE));
    assert.ok(bad.length === 0, `over ${TOLERANCE}:\n${formatAgreement(bad)}`);
  });

  test(`a screenshot of the finished page is at ${SCREENSHOT.replace(ROOT, '')}`, () => {
    assert.ok(existsSync(SCREENSHOT), `no file ${SCREENSHOT}: ${browser.error ?? ''}`);
    assert.ok(statSync(SCREENSHOT).mtimeMs >= started - 2000, `${SCREENSHOT} was not written by this run: ${browser.error ?? ''}`);
    const png = readFileSync(SCREENSHOT);
    assert.equal([...png.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47], 'a PNG file');
    assert.ok(png.byteLength > 10_000, `${png.byteLength} bytes`);
  });
}

test.run();
