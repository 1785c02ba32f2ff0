/**
 * client-server "Server-side key backups": which of two backed-up copies of one
 * Megolm session key the server keeps when a client uploads another.
 */

/** The metadata of a backed-up session key that the replacement rule reads (KeyBackupData). */
export interface BackedUpKeyRank {
  readonly isVerified: boolean;
  readonly firstMessageIndex: number;
  readonly forwardedCount: number;
}

/**
 * Whether `incoming` replaces `existing`, in the spec's order: a verified key
 * beats an unverified one; then the lower `first_message_index` (it decrypts
 * more of the session); then the lower `forwarded_count`. A tie keeps the
 * existing key.
 */
export function incomingKeyReplaces(existing: BackedUpKeyRank, incoming: BackedUpKeyRank): boolean {
  if (existing.isVerified !== incoming.isVerified) return incoming.isVerified;
  if (existing.firstMessageIndex !== incoming.firstMessageIndex)
    return incoming.firstMessageIndex < existing.firstMessageIndex;
  return incoming.forwardedCount < existing.forwardedCount;
}
