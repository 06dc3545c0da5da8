// Desktop notifications and a sound for new alerts at or above a chosen severity — off until
// the user turns them on (which is when the browser asks for permission). Kept per browser in
// localStorage.
import type { Alert, Severity } from "./api/types";
import { SEVERITIES } from "./api/types";
import { arrivals } from "./live/store";
import { cell } from "./state";

export interface AlertingSettings {
  notify: boolean;
  sound: boolean;
  atLeast: Severity;
}

const KEY = "oc.alerting";
export const settings = cell<AlertingSettings>({
  notify: false,
  sound: false,
  atLeast: "critical",
  ...JSON.parse(localStorage.getItem(KEY) ?? "{}"),
});
settings.subscribe((s) => localStorage.setItem(KEY, JSON.stringify(s)));

export async function enableNotifications(on: boolean) {
  if (on && "Notification" in window && Notification.permission === "default") {
    await Notification.requestPermission();
  }
  settings.update((s) => ({ ...s, notify: on }));
}

let audio: AudioContext | null = null;

/** A short two-tone beep, made on the spot (no sound file to fetch). */
export function beep() {
  audio ??= new AudioContext();
  const now = audio.currentTime;
  for (const [i, freq] of [880, 660].entries()) {
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.0001, now + i * 0.18);
    gain.gain.exponentialRampToValueAtTime(0.2, now + i * 0.18 + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, now + i * 0.18 + 0.16);
    osc.connect(gain).connect(audio.destination);
    osc.start(now + i * 0.18);
    osc.stop(now + i * 0.18 + 0.17);
  }
}

function severeEnough(a: Alert, atLeast: Severity) {
  return SEVERITIES.indexOf(a.severity) <= SEVERITIES.indexOf(atLeast);
}

arrivals.subscribe((batch) => {
  const s = settings.get();
  if (!s.notify && !s.sound) return;
  const severe = batch.filter((a) => a.status === "active" && severeEnough(a, s.atLeast));
  if (severe.length === 0) return;
  if (s.sound) beep();
  if (s.notify && "Notification" in window && Notification.permission === "granted") {
    // One notification per batch, not one per alert: a burst must not bury the desktop.
    const first = severe[0];
    const more = severe.length > 1 ? ` (+${severe.length - 1} more)` : "";
    new Notification(`${first.severity.toUpperCase()}: ${first.title}${more}`, {
      body: [first.device_name ?? first.device_ip, first.addon_id].filter(Boolean).join(" · "),
      tag: "opsconductor-alerts",
    });
  }
});
