/**
 * The main thread's share of yielding to sends (send-yield.ts): notify messages for the
 * delivery line are posted once the sends pause, or once the oldest has waited
 * maxHoldMs, consecutive ones as one message. Posting (serialising, waking the worker)
 * is then off the sends' turns, and the worker has nothing to do while they go on.
 * Whatever is posted after a held message waits behind it, in order: an answer's unread
 * total counts the notifications delivered before it, a read mark moved after them must
 * reach the line after them.
 */
import type { ToDelivery } from './push-preparer.js';
import type { SendYield } from './send-yield.js';

type Notify = Extract<ToDelivery, { type: 'notify' }>;

export class HeldPosts {
  private held: ToDelivery[] = [];
  /** When the first held message was held (SendYield's clock). */
  private heldSince = 0;

  constructor(
    private readonly sendYield: SendYield,
    private readonly post: (message: ToDelivery) => void,
  ) {}

  /** Posts the message now, or after the sends pause (notify messages and what follows them). */
  send(message: ToDelivery): void {
    if (this.held.length === 0) {
      if (message.type !== 'notify') {
        this.post(message);
        return;
      }
      this.heldSince = this.sendYield.now();
      this.held.push(message);
      this.sendYield.start(this.heldSince, () => this.flush());
      return;
    }
    const last = this.held.at(-1)!;
    if (message.type === 'notify' && last.type === 'notify') merge(last, message);
    else this.held.push(message);
  }

  /** Posts what is held at once (stopping: the line delivers what it can before it stops). */
  stop(): void {
    if (this.held.length > 0) this.flush();
    this.sendYield.stop();
  }

  private flush(): void {
    const held = this.held;
    this.held = [];
    const heldMs = Math.max(0, this.sendYield.now() - this.heldSince);
    for (const message of held) this.post(message.type === 'notify' ? { ...message, heldMs } : message);
  }
}

/** Appends a notify message's events to the one before it (their settlements are counted together). */
function merge(into: Notify, message: Notify): void {
  for (const notification of message.notifications) into.notifications.push(notification);
  into.batches += message.batches;
}
