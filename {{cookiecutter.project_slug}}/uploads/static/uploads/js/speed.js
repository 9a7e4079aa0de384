/*
 * Speed and time left, from the bytes this page actually sent: a chunk the
 * server already had (found by the test GET after a resume) moves the
 * progress bar but is not speed. Measured over a sliding window, so that a
 * pause or a burst fades out.
 */

const WINDOW_MS = 5000;
const MIN_SPAN_MS = 500; // fewer samples than this say nothing about speed

export class Speedometer {
  constructor() {
    this.samples = []; // [time, bytes sent so far]
  }

  reset() {
    this.samples = [];
  }

  // `sent` never goes down: the caller adds only what is new.
  sample(sent, now = Date.now()) {
    this.samples.push([now, sent]);
    while (this.samples.length > 2 && now - this.samples[0][0] > WINDOW_MS) this.samples.shift();
  }

  // Bytes a second, or 0 while there is not enough to tell.
  get speed() {
    if (this.samples.length < 2) return 0;
    const [since, sentThen] = this.samples[0];
    const [now, sentNow] = this.samples[this.samples.length - 1];
    return now - since >= MIN_SPAN_MS ? (sentNow - sentThen) * 1000 / (now - since) : 0;
  }
}
