// Starts the `sockeye serve` binary for the measurement scripts and reads its /proc numbers.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

export async function startServe(bin, extraArgs = []) {
  const child = spawn(bin, ['serve', '--listen', '127.0.0.1:0', '--ping-interval', '0', ...extraArgs], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const addr = await new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`sockeye serve exited with ${code}`)));
    createInterface({ input: child.stdout }).on('line', (line) => {
      const m = /^LISTENING (\S+)$/.exec(line);
      if (m) resolve(m[1]);
    });
  });
  return {
    child,
    addr,
    /** Resident memory in KiB (VmRSS, RssAnon) from /proc/PID/status. */
    rss() {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      const kb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)[1]);
      return { VmRSS: kb('VmRSS'), RssAnon: kb('RssAnon') };
    },
    /** User + system CPU time in milliseconds from /proc/PID/stat (10 ms resolution). */
    cpuMs() {
      const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(fields[11]) + Number(fields[12])) * 10; // utime, stime at CLK_TCK = 100
    },
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    },
  };
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
