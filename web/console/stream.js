// Live events over /api/v1/stream. Reconnects with exponential backoff (1 s doubling to 30 s,
// with jitter) and reports its state so the app can show a "reconnecting" banner. After a
// reconnect the app reloads its lists, because events may have been missed while offline.
export class Stream {
  constructor({ token, onEvent, onState }) {
    this.token = token; this.onEvent = onEvent; this.onState = onState;
    this.attempt = 0; this.closed = false; this.ws = null; this.timer = null; this.everOpen = false;
  }
  url() {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${proto}//${location.host}/api/v1/stream`;
  }
  start() {
    if (this.closed) return;
    let ws;
    // The token travels as a subprotocol, not in the URL (which proxies and logs keep).
    try { ws = new WebSocket(this.url(), ['aoun.stream', `token.${this.token}`]); } catch { this.schedule(); return; }
    this.ws = ws;
    ws.onopen = () => {
      const wasReconnect = this.attempt > 0 || this.everOpen;
      this.attempt = 0; this.everOpen = true;
      this.onState({ state: 'open', reconnected: wasReconnect });
    };
    ws.onmessage = (e) => {
      let ev; try { ev = JSON.parse(e.data); } catch { return; }
      this.onEvent(ev);
    };
    ws.onclose = () => { if (this.ws === ws) { this.ws = null; this.schedule(); } };
    ws.onerror = () => { /* onclose follows */ };
  }
  schedule() {
    if (this.closed) return;
    const base = Math.min(30000, 1000 * 2 ** this.attempt);
    const delay = Math.round(base * (0.75 + Math.random() * 0.5));
    this.attempt++;
    this.onState({ state: 'reconnecting', delay, attempt: this.attempt });
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.start(), delay);
  }
  stop() {
    this.closed = true; clearTimeout(this.timer);
    if (this.ws) { const ws = this.ws; this.ws = null; ws.close(); }
  }
}
