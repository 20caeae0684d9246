#!/usr/bin/env node
// Makes sure a WebGPU adapter exists for Node (npm `webgpu`, i.e. Dawn over Vulkan).
// Runs automatically before `npm test`, `npm run demo` and `npm run bench` (npm pre-scripts).
//
// 1. Probe: ask Dawn for an adapter in a child process. Found -> print it and stop.
// 2. Otherwise, on Debian/Ubuntu as root, install a Mesa lavapipe new enough for Dawn:
//    Debian 12 ships Mesa 22.3, whose lavapipe Dawn rejects, so we add bookworm-backports (on the
//    mirror the machine's apt sources already use) and install mesa-vulkan-drivers from there
//    (Mesa 25). Newer Debian and Ubuntu releases have a new enough Mesa in their main archive.
// 3. Without root, or on another system, print the exact commands and exit non-zero.
// 4. Last resort: SwiftShader from Debian's chromium-common; engine/device.ts selects it by itself
//    when lavapipe is missing (it sets VK_ICD_FILENAMES).
// 5. With --browser (npm test's pretest): Debian's `chromium` for test/browser.test.ts (headless,
//    WebGPU on SwiftShader), installed with apt as root on Debian when /usr/bin/chromium is missing.
//    Otherwise the command is printed and the browser tests skip with that reason (or fail where
//    SGILO_REQUIRE_BROWSER=1, as in .ci/run); a failed install does not stop the other tests.
// 6. Also with --browser: Debian's `redis-server` for test/queue.test.ts (which starts its own
//    server on a loopback port), the same way; without it those tests fail saying so.

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';

const PROBE = `
import { create, globals } from 'webgpu';
process.env.XDG_RUNTIME_DIR ||= '/tmp';
Object.assign(globalThis, globals);
const gpu = create([]);
const a = await gpu.requestAdapter();
console.log(JSON.stringify(a ? { description: a.info.description, vendor: a.info.vendor, architecture: a.info.architecture } : null));
`;

function probe(env = process.env) {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', PROBE], { encoding: 'utf8', timeout: 60_000, env });
  const line = (r.stdout ?? '').trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line);
  } catch {
    return null;
  }
}

function osRelease() {
  try {
    return Object.fromEntries(
      readFileSync('/etc/os-release', 'utf8')
        .split('\n')
        .filter((l) => l.includes('='))
        .map((l) => {
          const i = l.indexOf('=');
          return [l.slice(0, i), l.slice(i + 1).replace(/^"|"$/g, '')];
        }),
    );
  } catch {
    return {};
  }
}

/** The Debian mirror the machine already uses for its main suite (deb822 or one-line format). */
function debianMirror(codename) {
  const files = ['/etc/apt/sources.list'];
  if (existsSync('/etc/apt/sources.list.d')) {
    for (const f of readdirSync('/etc/apt/sources.list.d')) files.push(`/etc/apt/sources.list.d/${f}`);
  }
  for (const f of files) {
    if (!existsSync(f)) continue;
    const text = readFileSync(f, 'utf8');
    // One-line format: deb [opts] URI SUITE COMPONENTS
    for (const line of text.split('\n')) {
      const m = /^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line);
      if (m && m[2] === codename && !m[1].includes('security')) return m[1];
    }
    // deb822 format: stanzas with URIs: and Suites:
    for (const stanza of text.split(/\n\s*\n/)) {
      const uris = /^URIs:\s*(.+)$/m.exec(stanza)?.[1]?.trim().split(/\s+/) ?? [];
      const suites = /^Suites:\s*(.+)$/m.exec(stanza)?.[1]?.trim().split(/\s+/) ?? [];
      if (suites.includes(codename) && uris[0] && !uris[0].includes('security')) return uris[0];
    }
  }
  return 'http://deb.debian.org/debian';
}

function installCommands(os) {
  if (os.ID === 'debian' && os.VERSION_CODENAME === 'bookworm') {
    const mirror = debianMirror('bookworm');
    return {
      setup: () => writeFileSync('/etc/apt/sources.list.d/sgilo-bookworm-backports.list', `deb ${mirror} bookworm-backports main\n`),
      text: [
        `echo "deb ${mirror} bookworm-backports main" > /etc/apt/sources.list.d/sgilo-bookworm-backports.list`,
        'apt-get update',
        'apt-get install -y -t bookworm-backports mesa-vulkan-drivers libvulkan1',
      ],
      commands: [
        ['apt-get', ['update']],
        ['apt-get', ['install', '-y', '-t', 'bookworm-backports', 'mesa-vulkan-drivers', 'libvulkan1']],
      ],
    };
  }
  if (os.ID === 'debian' || os.ID === 'ubuntu' || (os.ID_LIKE ?? '').includes('debian')) {
    return {
      setup: () => {},
      text: ['apt-get update', 'apt-get install -y mesa-vulkan-drivers libvulkan1'],
      commands: [
        ['apt-get', ['update']],
        ['apt-get', ['install', '-y', 'mesa-vulkan-drivers', 'libvulkan1']],
      ],
    };
  }
  return null;
}

function main() {
  const found = probe();
  if (found) {
    console.log(`provision: WebGPU adapter present: ${found.description} (${found.vendor}/${found.architecture})`);
    return 0;
  }
  const os = osRelease();
  const plan = installCommands(os);
  if (!plan) {
    console.error(`provision: no WebGPU adapter, and ${os.PRETTY_NAME ?? 'this system'} is not Debian/Ubuntu.\nInstall a Vulkan driver (Mesa >= 25 lavapipe, or a GPU driver) and retry.`);
    return 1;
  }
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot) {
    console.error(`provision: no WebGPU adapter. Run as root:\n  ${plan.text.join('\n  ')}`);
    return 1;
  }
  console.log(`provision: no WebGPU adapter; installing Mesa lavapipe on ${os.PRETTY_NAME}:`);
  plan.setup();
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const [cmd, args] of plan.commands) {
    console.log(`  ${cmd} ${args.join(' ')}`);
    execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'], env });
  }
  const after = probe();
  if (after) {
    console.log(`provision: WebGPU adapter present: ${after.description}`);
    return 0;
  }
  console.error('provision: lavapipe was installed but Dawn still finds no adapter.');
  return 1;
}

const CHROMIUM = '/usr/bin/chromium';
const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

function provisionBrowser() {
  if (existsSync(CHROMIUM) && existsSync(SWIFTSHADER_ICD)) {
    console.log(`provision: Chromium present for the browser tests (${CHROMIUM})`);
    return;
  }
  const os = osRelease();
  const commands = [['apt-get', ['update']], ['apt-get', ['install', '-y', 'chromium']]];
  const text = commands.map(([c, a]) => `${c} ${a.join(' ')}`).join('\n  ');
  if (os.ID !== 'debian') {
    // Ubuntu's chromium package is a snap stub that does not run in containers.
    console.error(`provision: no ${CHROMIUM} with SwiftShader: the browser tests will skip. Install Chromium and set SGILO_CHROMIUM to it.`);
    return;
  }
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot) {
    console.error(`provision: no Chromium for the browser tests (they will skip). Run as root:\n  ${text}`);
    return;
  }
  aptInstall(commands, 'chromium', 'browser');
}

/** Runs the apt-get commands (as root, non-interactive), saying what it does; a failure is reported, not thrown. */
function aptInstall(commands, pkg, tests) {
  console.log(`provision: installing Debian's ${pkg} for the ${tests} tests:`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    for (const [cmd, args] of commands) {
      console.log(`  ${cmd} ${args.join(' ')}`);
      execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'], env });
    }
  } catch (e) {
    console.error(`provision: installing ${pkg} failed (${e.message}); the ${tests} tests will report it`);
  }
}

const REDIS_SERVER = '/usr/bin/redis-server';

/** Debian's redis-server for test/queue.test.ts, which starts its own server on a loopback port. */
function provisionRedis() {
  if (existsSync(REDIS_SERVER)) {
    console.log(`provision: redis-server present for the queue tests (${REDIS_SERVER})`);
    return;
  }
  const commands = [['apt-get', ['update']], ['apt-get', ['install', '-y', '--no-install-recommends', 'redis-server']]];
  const text = commands.map(([c, a]) => `${c} ${a.join(' ')}`).join('\n  ');
  const os = osRelease();
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!['debian', 'ubuntu'].includes(os.ID) || !isRoot) {
    console.error(`provision: no ${REDIS_SERVER} for the queue tests (they will fail saying so). ${isRoot ? 'Install redis-server, or set SGILO_REDIS_SERVER to one.' : `Run as root:\n  ${text}`}`);
    return;
  }
  aptInstall(commands, 'redis-server', 'queue');
}

process.exitCode = main();
if (process.argv.includes('--browser')) {
  provisionBrowser();
  provisionRedis();
}
