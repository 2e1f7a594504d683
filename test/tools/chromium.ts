// Headless Chromium (Debian's `chromium`; .ci/run installs it) for tests that render a page: the DOM
// after scripts ran, and a screenshot. Each call uses a fresh profile and nothing that reaches the network.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const CANDIDATES = ['chromium', 'chromium-browser', 'google-chrome'];

/** The Chromium executable on PATH, or undefined. */
export function findChromium(): string | undefined {
  return CANDIDATES.find((name) => spawnSync(name, ['--version'], { stdio: 'ignore' }).status === 0);
}

function runChromium(binary: string, args: string[], page: string): string {
  const profile = mkdtempSync(path.join(os.tmpdir(), 'chromium-profile-'));
  try {
    return execFileSync(
      binary,
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--hide-scrollbars',
        '--force-device-scale-factor=1',
        `--user-data-dir=${profile}`,
        ...args,
        pathToFileURL(page).href,
      ],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 90_000, maxBuffer: 64 * 1024 * 1024 },
    );
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

/** The page's DOM as serialised after its scripts ran. */
export function dumpDom(binary: string, page: string, width: number, height: number): string {
  return runChromium(binary, [`--window-size=${width},${height}`, '--dump-dom'], page);
}

/** A PNG screenshot of the top `width` × `height` of the page. */
export function screenshot(binary: string, page: string, png: string, width: number, height: number): void {
  runChromium(binary, [`--window-size=${width},${height}`, `--screenshot=${png}`], page);
}
