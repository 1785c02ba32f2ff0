import { sql } from 'drizzle-orm';
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';

/**
 * Drizzle's view of the tables that migrations.ts creates. Only typed queries
 * use this; the migrations are the source of truth for the database.
 */

export const streamPositions = sqliteTable('stream_positions', {
  stream: text('stream').primaryKey(),
  position: integer('position').notNull(),
});

export const stateSnapshots = sqliteTable('state_snapshots', {
  snapshotId: integer('snapshot_id').primaryKey({ autoIncrement: true }),
  roomId: text('room_id').notNull(),
  parentId: integer('parent_id'),
  /** Deltas between this snapshot and the nearest full one (0: stored in full). */
  chainLength: integer('chain_length').notNull(),
});

export const stateSnapshotEntries = sqliteTable(
  'state_snapshot_entries',
  {
    snapshotId: integer('snapshot_id').notNull(),
    type: text('type').notNull(),
    stateKey: text('state_key').notNull(),
    /** Null: the key is removed relative to the parent snapshot. */
    eventId: text('event_id'),
  },
  (t) => [primaryKey({ columns: [t.snapshotId, t.type, t.stateKey] })],
);

export const events = sqliteTable(
  'events',
  {
    streamOrdering: integer('stream_ordering').primaryKey(),
    eventId: text('event_id').notNull().unique(),
    roomId: text('room_id').notNull(),
    type: text('type').notNull(),
    stateKey: text('state_key'),
    sender: text('sender').notNull(),
    depth: integer('depth').notNull(),
    originServerTs: integer('origin_server_ts').notNull(),
    outlier: integer('outlier', { mode: 'boolean' }).notNull(),
    rejectionReason: text('rejection_reason'),
    stateBeforeSnapshotId: integer('state_before_snapshot_id'),
    stateAfterSnapshotId: integer('state_after_snapshot_id'),
    json: text('json').notNull(),
    /** The client transaction of a local send (device and scoped txn ID); null otherwise. */
    txnDeviceId: text('txn_device_id'),
    txnId: text('txn_id'),
  },
  (t) => [
    index('events_by_room_stream').on(t.roomId, t.streamOrdering),
    index('events_by_room_ts').on(t.roomId, t.originServerTs),
  ],
);

export const eventEdges = sqliteTable(
  'event_edges',
  {
    eventId: text('event_id').notNull(),
    prevEventId: text('prev_event_id').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.eventId, t.prevEventId] }),
    index('event_edges_by_prev').on(t.prevEventId),
  ],
);

export const eventAuthEdges = sqliteTable(
  'event_auth_edges',
  {
    eventId: text('event_id').notNull(),
    authEventId: text('auth_event_id').notNull(),
  },
  (t) => [primaryKey({ columns: [t.eventId, t.authEventId] })],
);

export const forwardExtremities = sqliteTable(
  'forward_extremities',
  {
    roomId: text('room_id').notNull(),
    eventId: text('event_id').notNull(),
  },
  (t) => [primaryKey({ columns: [t.roomId, t.eventId] })],
);

export const currentState = sqliteTable(
  'current_state',
  {
    roomId: text('room_id').notNull(),
    type: text('type').notNull(),
    stateKey: text('state_key').notNull(),
    eventId: text('event_id').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.roomId, t.type, t.stateKey] }),
    index('current_state_by_key').on(t.type, t.stateKey),
  ],
);

export const accounts = sqliteTable(
  'accounts',
  {
    userId: text('user_id').primaryKey(),
    passwordHash: text('password_hash'),
    isAdmin: integer('is_admin', { mode: 'boolean' }).notNull().default(false),
    isGuest: integer('is_guest', { mode: 'boolean' }).notNull().default(false),
    deactivated: integer('deactivated', { mode: 'boolean' }).notNull().default(false),
    createdTs: integer('created_ts').notNull(),
    displayName: text('display_name'),
    avatarUrl: text('avatar_url'),
    erased: integer('erased', { mode: 'boolean' }).notNull().default(false),
    locked: integer('locked', { mode: 'boolean' }).notNull().default(false),
    suspended: integer('suspended', { mode: 'boolean' }).notNull().default(false),
  },
  (t) => [index('accounts_by_lower_user_id').on(sql`lower(${t.userId})`)],
);

export const profileFields = sqliteTable(
  'profile_fields',
  {
    userId: text('user_id').notNull(),
    key: text('key').notNull(),
    /** The field's JSON value. */
    value: text('value').notNull(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.key] })],
);

export const devices = sqliteTable(
  'devices',
  {
    userId: text('user_id').notNull(),
    deviceId: text('device_id').notNull(),
    displayName: text('display_name'),
    createdTs: integer('created_ts').notNull(),
    lastSeenIp: text('last_seen_ip'),
    lastSeenTs: integer('last_seen_ts'),
    lastSeenUserAgent: text('last_seen_user_agent'),
  },
  (t) => [primaryKey({ columns: [t.userId, t.deviceId] })],
);

export const sessions = sqliteTable(
  'sessions',
  {
    sessionId: text('session_id').primaryKey(),
    userId: text('user_id').notNull(),
    deviceId: text('device_id').notNull(),
    createdTs: integer('created_ts').notNull(),
    revoked: integer('revoked', { mode: 'boolean' }).notNull().default(false),
    refreshTokenHash: text('refresh_token_hash').unique(),
    refreshTokenExpiresTs: integer('refresh_token_expires_ts'),
    /** The refresh token the current one replaced: presenting it again is reuse. */
    replacedRefreshTokenHash: text('replaced_refresh_token_hash'),
  },
  (t) => [
    index('sessions_by_device').on(t.userId, t.deviceId),
    uniqueIndex('sessions_by_replaced_refresh_token').on(t.replacedRefreshTokenHash),
  ],
);

export const transactionIds = sqliteTable(
  'transaction_ids',
  {
    userId: text('user_id').notNull(),
    deviceId: text('device_id').notNull(),
    txnId: text('txn_id').notNull(),
    eventId: text('event_id').notNull(),
    createdTs: integer('created_ts').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.userId, t.deviceId, t.txnId] }),
    index('transaction_ids_of_appservices_by_created_ts')
      .on(t.createdTs)
      .where(sql`device_id LIKE 'appservice:%'`),
  ],
);

export const accountData = sqliteTable(
  'account_data',
  {
    userId: text('user_id').notNull(),
    /** '' for global account data, so the primary key also covers it. */
    roomId: text('room_id').notNull(),
    type: text('type').notNull(),
    content: text('content').notNull(),
    streamPosition: integer('stream_position').notNull().unique(),
  },
  (t) => [
    primaryKey({ columns: [t.userId, t.roomId, t.type] }),
    index('account_data_by_user_stream').on(t.userId, t.streamPosition),
  ],
);

export const registrationTokens = sqliteTable('registration_tokens', {
  token: text('token').primaryKey(),
  usesAllowed: integer('uses_allowed'),
  pending: integer('pending').notNull().default(0),
  completed: integer('completed').notNull().default(0),
  expiryTs: integer('expiry_ts'),
});

export const loginTokens = sqliteTable(
  'login_tokens',
  {
    tokenHash: text('token_hash').primaryKey(),
    userId: text('user_id').notNull(),
    createdTs: integer('created_ts').notNull(),
    expiresTs: integer('expires_ts').notNull(),
  },
  (t) => [index('login_tokens_by_expires_ts').on(t.expiresTs)],
);

export const presence = sqliteTable(
  'presence',
  {
    userId: text('user_id').primaryKey(),
    state: text('state', { enum: ['online', 'unavailable', 'offline'] }).notNull(),
    statusMsg: text('status_msg'),
    lastActiveTs: integer('last_active_ts').notNull(),
    updatedTs: integer('updated_ts').notNull(),
    currentlyActive: integer('currently_active', { mode: 'boolean' }).notNull(),
    streamPosition: integer('stream_position').notNull().unique(),
  },
  (t) => [index('presence_not_offline').on(t.userId).where(sql`state != 'offline'`)],
);

export const uiaSessions = sqliteTable(
  'uia_sessions',
  {
    sessionId: text('session_id').primaryKey(),
    createdTs: integer('created_ts').notNull(),
    method: text('method').notNull(),
    uri: text('uri').notNull(),
    /** JSON object. */
    clientDict: text('client_dict').notNull(),
    /** JSON object: stage -> result. */
    completed: text('completed').notNull().default('{}'),
    /** JSON object: key -> value. */
    params: text('params').notNull().default('{}'),
  },
  (t) => [index('uia_sessions_by_created_ts').on(t.createdTs)],
);

export const rooms = sqliteTable(
  'rooms',
  {
    roomId: text('room_id').primaryKey(),
    roomVersion: text('room_version').notNull(),
    creator: text('creator').notNull(),
    createdTs: integer('created_ts').notNull(),
    isPublic: integer('is_public', { mode: 'boolean' }).notNull().default(false),
  },
  (t) => [index('rooms_public').on(t.roomId).where(sql`is_public = 1`)],
);

export const roomAliases = sqliteTable(
  'room_aliases',
  {
    alias: text('alias').primaryKey(),
    roomId: text('room_id').notNull(),
    creator: text('creator').notNull(),
    createdTs: integer('created_ts').notNull(),
  },
  (t) => [index('room_aliases_by_room').on(t.roomId)],
);

export const memberships = sqliteTable(
  'memberships',
  {
    roomId: text('room_id').notNull(),
    userId: text('user_id').notNull(),
    membership: text('membership', { enum: ['join', 'invite', 'leave', 'ban', 'knock'] }).notNull(),
    eventId: text('event_id').notNull(),
    /** Where the change took effect on the event stream. */
    streamOrdering: integer('stream_ordering').notNull(),
    forgotten: integer('forgotten', { mode: 'boolean' }).notNull().default(false),
  },
  (t) => [
    primaryKey({ columns: [t.roomId, t.userId] }),
    index('memberships_by_user').on(t.userId, t.membership, t.streamOrdering),
    index('memberships_by_user_stream').on(t.userId, t.streamOrdering),
    index('memberships_by_room').on(t.roomId, t.membership, t.userId),
  ],
);

export const receipts = sqliteTable(
  'receipts',
  {
    roomId: text('room_id').notNull(),
    receiptType: text('receipt_type').notNull(),
    userId: text('user_id').notNull(),
    /** '' for an unthreaded receipt, so the primary key also covers it. */
    threadId: text('thread_id').notNull(),
    eventId: text('event_id').notNull(),
    /** JSON object. */
    data: text('data').notNull(),
    streamPosition: integer('stream_position').notNull().unique(),
    /** For delivery receipts, the sender of the delivered event (the only one shown them). */
    eventSender: text('event_sender'),
  },
  (t) => [
    primaryKey({ columns: [t.roomId, t.receiptType, t.userId, t.threadId] }),
    index('receipts_shown_by_room_stream')
      .on(t.roomId, t.streamPosition)
      .where(sql`receipt_type <> 'io.myelin.delivered'`),
    index('receipts_delivered_by_sender')
      .on(t.eventSender, t.streamPosition)
      .where(sql`receipt_type = 'io.myelin.delivered'`),
  ],
);

export const eventRelations = sqliteTable(
  'event_relations',
  {
    eventId: text('event_id').primaryKey(),
    roomId: text('room_id').notNull(),
    relatesTo: text('relates_to').notNull(),
    relType: text('rel_type').notNull(),
    eventType: text('event_type').notNull(),
    sender: text('sender').notNull(),
    aggregationKey: text('aggregation_key'),
    streamOrdering: integer('stream_ordering').notNull(),
    originServerTs: integer('origin_server_ts').notNull(),
  },
  (t) => [
    index('event_relations_by_target').on(t.relatesTo, t.relType, t.eventType, t.streamOrdering),
    index('event_relations_by_room').on(t.roomId, t.relType, t.relatesTo, t.streamOrdering),
  ],
);

export const redactions = sqliteTable('redactions', {
  redactedEventId: text('redacted_event_id').primaryKey(),
  redactionEventId: text('redaction_event_id').notNull(),
});

export const mediaBlobs = sqliteTable('media_blobs', {
  sha256: text('sha256').primaryKey().notNull(),
  size: integer('size').notNull(),
  encrypted: integer('encrypted', { mode: 'boolean' }).notNull(),
  lastUsedTs: integer('last_used_ts').notNull(),
});

export const media = sqliteTable(
  'media',
  {
    serverName: text('server_name').notNull(),
    mediaId: text('media_id').notNull(),
    userId: text('user_id'),
    createdTs: integer('created_ts').notNull(),
    unusedExpiresTs: integer('unused_expires_ts'),
    blobSha256: text('blob_sha256').references(() => mediaBlobs.sha256),
    contentType: text('content_type'),
    uploadName: text('upload_name'),
    originalSize: integer('original_size'),
    authenticatedOnly: integer('authenticated_only', { mode: 'boolean' }).notNull(),
    quarantined: integer('quarantined', { mode: 'boolean' }).notNull().default(false),
    /** JSON: the io.myelin.preview object. */
    preview: text('preview'),
    lastAccessTs: integer('last_access_ts').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.serverName, t.mediaId] }),
    index('media_by_user').on(t.userId),
    index('media_by_blob').on(t.blobSha256),
    index('media_by_last_access').on(t.lastAccessTs),
  ],
);

export const mediaThumbnails = sqliteTable(
  'media_thumbnails',
  {
    serverName: text('server_name').notNull(),
    mediaId: text('media_id').notNull(),
    width: integer('width').notNull(),
    height: integer('height').notNull(),
    method: text('method').notNull(),
    animated: integer('animated', { mode: 'boolean' }).notNull(),
    blobSha256: text('blob_sha256')
      .notNull()
      .references(() => mediaBlobs.sha256),
    contentType: text('content_type').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.serverName, t.mediaId, t.width, t.height, t.method, t.animated] }),
    index('media_thumbnails_by_blob').on(t.blobSha256),
  ],
);

export const filters = sqliteTable(
  'filters',
  {
    userId: text('user_id').notNull(),
    filterId: text('filter_id').notNull(),
    /** The filter JSON as uploaded. */
    filter: text('filter').notNull(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.filterId] })],
);

// End-to-end encryption keys and the device-list stream (migration 5).

export const e2eDeviceKeys = sqliteTable(
  'e2e_device_keys',
  {
    userId: text('user_id').notNull(),
    deviceId: text('device_id').notNull(),
    /** The device_keys object as uploaded. */
    keyJson: text('key_json').notNull(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.deviceId] })],
);

export const e2eOneTimeKeys = sqliteTable(
  'e2e_one_time_keys',
  {
    userId: text('user_id').notNull(),
    deviceId: text('device_id').notNull(),
    algorithm: text('algorithm').notNull(),
    keyId: text('key_id').notNull(),
    keyJson: text('key_json').notNull(),
    uploadSeq: integer('upload_seq').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.userId, t.deviceId, t.algorithm, t.keyId] }),
    index('e2e_one_time_keys_by_upload').on(t.userId, t.deviceId, t.algorithm, t.uploadSeq),
  ],
);

export const e2eFallbackKeys = sqliteTable(
  'e2e_fallback_keys',
  {
    userId: text('user_id').notNull(),
    deviceId: text('device_id').notNull(),
    algorithm: text('algorithm').notNull(),
    keyId: text('key_id').notNull(),
    keyJson: text('key_json').notNull(),
    used: integer('used', { mode: 'boolean' }).notNull().default(false),
  },
  (t) => [primaryKey({ columns: [t.userId, t.deviceId, t.algorithm] })],
);

export const e2eCrossSigningKeys = sqliteTable(
  'e2e_cross_signing_keys',
  {
    userId: text('user_id').notNull(),
    /** master, self_signing or user_signing. */
    usage: text('usage').notNull(),
    publicKey: text('public_key').notNull(),
    keyJson: text('key_json').notNull(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.usage] })],
);

export const e2eSignatures = sqliteTable(
  'e2e_signatures',
  {
    targetUserId: text('target_user_id').notNull(),
    /** A device ID or a cross-signing public key. */
    targetKeyId: text('target_key_id').notNull(),
    signerUserId: text('signer_user_id').notNull(),
    signerKeyId: text('signer_key_id').notNull(),
    signature: text('signature').notNull(),
  },
  (t) => [primaryKey({ columns: [t.targetUserId, t.targetKeyId, t.signerUserId, t.signerKeyId] })],
);

export const deviceListChanges = sqliteTable('device_list_changes', {
  position: integer('position').primaryKey(),
  userId: text('user_id').notNull(),
  /** keys, joined or left. */
  change: text('change').notNull(),
  roomId: text('room_id'),
});

// Outbound device-list updates (migration 17).

export const deviceListOutboundStreams = sqliteTable('device_list_outbound_streams', {
  userId: text('user_id').primaryKey(),
  lastStreamId: integer('last_stream_id').notNull(),
});

export const deviceListOutboundDevices = sqliteTable(
  'device_list_outbound_devices',
  {
    userId: text('user_id').notNull(),
    deviceId: text('device_id').notNull(),
    contentHash: text('content_hash').notNull(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.deviceId] })],
);

// Send-to-device and key backups (migration 6).

export const toDeviceInbox = sqliteTable(
  'to_device_inbox',
  {
    userId: text('user_id').notNull(),
    deviceId: text('device_id').notNull(),
    streamPosition: integer('stream_position').notNull(),
    /** The event JSON as sync hands it out. */
    event: text('event').notNull(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.deviceId, t.streamPosition] })],
);

export const toDeviceTransactions = sqliteTable(
  'to_device_transactions',
  {
    userId: text('user_id').notNull(),
    deviceId: text('device_id').notNull(),
    eventType: text('event_type').notNull(),
    txnId: text('txn_id').notNull(),
    streamPosition: integer('stream_position').notNull(),
    createdTs: integer('created_ts').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.userId, t.deviceId, t.eventType, t.txnId] }),
    index('to_device_transactions_by_created_ts').on(t.createdTs),
  ],
);

export const roomKeyBackupVersions = sqliteTable(
  'room_key_backup_versions',
  {
    userId: text('user_id').notNull(),
    version: integer('version').notNull(),
    algorithm: text('algorithm').notNull(),
    /** JSON object. */
    authData: text('auth_data').notNull(),
    etag: integer('etag').notNull().default(0),
    deleted: integer('deleted', { mode: 'boolean' }).notNull().default(false),
  },
  (t) => [primaryKey({ columns: [t.userId, t.version] })],
);

export const roomKeyBackupKeys = sqliteTable(
  'room_key_backup_keys',
  {
    userId: text('user_id').notNull(),
    version: integer('version').notNull(),
    roomId: text('room_id').notNull(),
    sessionId: text('session_id').notNull(),
    firstMessageIndex: integer('first_message_index').notNull(),
    forwardedCount: integer('forwarded_count').notNull(),
    isVerified: integer('is_verified', { mode: 'boolean' }).notNull(),
    /** JSON object. */
    sessionData: text('session_data').notNull(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.version, t.roomId, t.sessionId] })],
);
/** Search documents (migrations 8 and 14); their text is in the FTS5 virtual table search_fts, which drizzle does not model. */
export const searchDocuments = sqliteTable(
  'search_documents',
  {
    streamOrdering: integer('stream_ordering').primaryKey(),
    eventId: text('event_id').notNull(),
    roomId: text('room_id').notNull(),
    sender: text('sender').notNull(),
    type: text('type').notNull(),
    msgtype: text('msgtype'),
    containsUrl: integer('contains_url', { mode: 'boolean' }).notNull(),
    originServerTs: integer('origin_server_ts').notNull(),
  },
  (t) => [index('search_documents_by_room').on(t.roomId, t.streamOrdering)],
);

export const searchPosition = sqliteTable('search_position', {
  id: integer('id').primaryKey(),
  indexedUpTo: integer('indexed_up_to').notNull(),
  /** Backfilled history (negative stream orderings) is indexed down to here (migration 14). */
  indexedDownTo: integer('indexed_down_to').notNull().default(0),
});

/** Cold storage (migration 9): segments of old events moved out of events (cold-archive.ts). */
export const coldSegments = sqliteTable('cold_segments', {
  segmentId: integer('segment_id').primaryKey(),
  roomId: text('room_id').notNull(),
  file: text('file').notNull().unique(),
  eventCount: integer('event_count').notNull(),
  createdTs: integer('created_ts').notNull(),
});

export const coldEvents = sqliteTable(
  'cold_events',
  {
    eventId: text('event_id').primaryKey(),
    roomId: text('room_id').notNull(),
    streamOrdering: integer('stream_ordering').notNull().unique(),
    originServerTs: integer('origin_server_ts').notNull(),
    segmentId: integer('segment_id').notNull(),
    /** The client transaction of a local send, carried over from the hot row; null otherwise. */
    txnUserId: text('txn_user_id'),
    txnDeviceId: text('txn_device_id'),
    txnId: text('txn_id'),
  },
  (t) => [
    index('cold_events_by_room').on(t.roomId, t.streamOrdering),
    index('cold_events_by_room_ts').on(t.roomId, t.originServerTs),
  ],
);

export const coldRedacted = sqliteTable('cold_redacted', {
  eventId: text('event_id').primaryKey(),
  json: text('json').notNull(),
});

export const pushRules = sqliteTable('push_rules', {
  userId: text('user_id').primaryKey(),
  /** JSON: the user's changes over the server-default rules. */
  rules: text('rules').notNull(),
});

export const pushers = sqliteTable(
  'pushers',
  {
    appId: text('app_id').notNull(),
    pushkey: text('pushkey').notNull(),
    userId: text('user_id').notNull(),
    deviceId: text('device_id'),
    kind: text('kind').notNull(),
    appDisplayName: text('app_display_name').notNull(),
    deviceDisplayName: text('device_display_name').notNull(),
    profileTag: text('profile_tag'),
    lang: text('lang').notNull(),
    /** JSON object. */
    data: text('data').notNull(),
    createdTs: integer('created_ts').notNull(),
  },
  (t) => [primaryKey({ columns: [t.appId, t.pushkey, t.userId] }), index('pushers_by_user').on(t.userId)],
);

/** User IDs, room IDs and action lists (JSON) of notification rows, each stored once. */
export const pushNames = sqliteTable('push_names', {
  id: integer('id').primaryKey(),
  name: text('name').notNull().unique(),
});

export const pushNotifications = sqliteTable(
  'push_notifications',
  {
    /** push_names.id of the user's ID. */
    userNameId: integer('user_name_id').notNull(),
    /** push_names.id of the room's ID. */
    roomNameId: integer('room_name_id').notNull(),
    /** The event's; its ID and time are read from `events`. */
    streamOrdering: integer('stream_ordering').notNull(),
    /** 'main' or the thread root's event ID. */
    threadId: text('thread_id').notNull(),
    /** push_names.id of the JSON array. */
    actionsNameId: integer('actions_name_id').notNull(),
    highlight: integer('highlight').notNull(),
  },
  // No second index: every row costs one B-tree insert (a thousand per event in a big room);
  // /notifications sorts the user's rows, found by the primary key's user prefix.
  (t) => [primaryKey({ columns: [t.userNameId, t.roomNameId, t.streamOrdering] })],
);

export const pushReadMarks = sqliteTable(
  'push_read_marks',
  {
    userId: text('user_id').notNull(),
    roomId: text('room_id').notNull(),
    /** '' for an unthreaded receipt. */
    threadId: text('thread_id').notNull(),
    streamOrdering: integer('stream_ordering').notNull(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.roomId, t.threadId] })],
);

export const contentReports = sqliteTable(
  'content_reports',
  {
    reportId: integer('report_id').primaryKey({ autoIncrement: true }),
    receivedTs: integer('received_ts').notNull(),
    reporter: text('reporter').notNull(),
    roomId: text('room_id'),
    eventId: text('event_id'),
    userId: text('user_id'),
    reason: text('reason'),
  },
  (t) => [index('content_reports_by_room').on(t.roomId, t.reportId)],
);

export const federationServerKeys = sqliteTable(
  'federation_server_keys',
  {
    serverName: text('server_name').notNull(),
    keyId: text('key_id').notNull(),
    publicKey: text('public_key').notNull(),
    validUntilTs: integer('valid_until_ts').notNull(),
    expired: integer('expired', { mode: 'boolean' }).notNull(),
    fetchedTs: integer('fetched_ts').notNull(),
  },
  (t) => [primaryKey({ columns: [t.serverName, t.keyId] })],
);

export const federationServerKeyResponses = sqliteTable('federation_server_key_responses', {
  serverName: text('server_name').primaryKey(),
  response: text('response').notNull(),
  validUntilTs: integer('valid_until_ts').notNull(),
  fetchedTs: integer('fetched_ts').notNull(),
});

export const federationOutbox = sqliteTable(
  'federation_outbox',
  {
    position: integer('position').primaryKey({ autoIncrement: true }),
    destination: text('destination').notNull(),
    kind: text('kind').notNull(),
    json: text('json').notNull(),
    txnId: text('txn_id'),
    expiresTs: integer('expires_ts'),
  },
  (t) => [index('federation_outbox_by_destination').on(t.destination, t.kind, t.txnId, t.position)],
);

export const federationDestinations = sqliteTable('federation_destinations', {
  destination: text('destination').primaryKey(),
  retryAfterTs: integer('retry_after_ts').notNull(),
  backoffMs: integer('backoff_ms').notNull(),
});

export const appserviceFanOut = sqliteTable('appservice_fan_out', {
  id: integer('id').primaryKey(),
  position: integer('position').notNull(),
});

/** Out-of-band memberships queued for the application services (never handed out again). */
export const appserviceOutOfBand = sqliteTable('appservice_out_of_band', {
  eventId: text('event_id').primaryKey(),
});

export const appserviceOutbox = sqliteTable(
  'appservice_outbox',
  {
    position: integer('position').primaryKey({ autoIncrement: true }),
    appserviceId: text('appservice_id').notNull(),
    json: text('json').notNull(),
    txnId: text('txn_id'),
  },
  (t) => [index('appservice_outbox_by_service').on(t.appserviceId, t.txnId, t.position)],
);

export const appserviceRoomList = sqliteTable(
  'appservice_room_list',
  {
    appserviceId: text('appservice_id').notNull(),
    networkId: text('network_id').notNull(),
    roomId: text('room_id').notNull(),
  },
  (t) => [primaryKey({ columns: [t.appserviceId, t.networkId, t.roomId] })],
);

export const federationInboundTransactions = sqliteTable(
  'federation_inbound_transactions',
  {
    origin: text('origin').notNull(),
    txnId: text('txn_id').notNull(),
    response: text('response').notNull(),
    receivedTs: integer('received_ts').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.origin, t.txnId] }),
    index('federation_inbound_transactions_by_time').on(t.receivedTs),
  ],
);

// Remote to-device message IDs (migration 14).

export const federationToDeviceMessageIds = sqliteTable(
  'federation_to_device_message_ids',
  {
    origin: text('origin').notNull(),
    messageId: text('message_id').notNull(),
    receivedTs: integer('received_ts').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.origin, t.messageId] }),
    index('federation_to_device_message_ids_by_time').on(t.receivedTs),
  ],
);

/** Redactions whose target is not stored yet (migration 17): applied when it is persisted. */
export const pendingRedactions = sqliteTable(
  'pending_redactions',
  {
    targetEventId: text('target_event_id').notNull(),
    redactionEventId: text('redaction_event_id').notNull(),
    roomId: text('room_id').notNull(),
    roomVersion: text('room_version').notNull(),
    senderServer: text('sender_server').notNull(),
    senderMayRedactAny: integer('sender_may_redact_any', { mode: 'boolean' }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.targetEventId, t.redactionEventId] })],
);

export const sqliteSchema = {
  streamPositions,
  stateSnapshots,
  stateSnapshotEntries,
  events,
  eventEdges,
  eventAuthEdges,
  forwardExtremities,
  currentState,
  accounts,
  devices,
  sessions,
  transactionIds,
  accountData,
  profileFields,
  registrationTokens,
  loginTokens,
  presence,
  uiaSessions,
  rooms,
  roomAliases,
  memberships,
  receipts,
  eventRelations,
  redactions,
  filters,
  e2eDeviceKeys,
  e2eOneTimeKeys,
  e2eFallbackKeys,
  e2eCrossSigningKeys,
  e2eSignatures,
  deviceListChanges,
  deviceListOutboundStreams,
  deviceListOutboundDevices,
  toDeviceInbox,
  toDeviceTransactions,
  roomKeyBackupVersions,
  roomKeyBackupKeys,
  mediaBlobs,
  media,
  mediaThumbnails,
  searchDocuments,
  searchPosition,
  coldSegments,
  coldEvents,
  coldRedacted,
  pushRules,
  pushers,
  pushNames,
  pushNotifications,
  pushReadMarks,
  contentReports,
  federationServerKeys,
  federationServerKeyResponses,
  federationOutbox,
  federationDestinations,
  federationInboundTransactions,
  federationToDeviceMessageIds,
  pendingRedactions,
  appserviceFanOut,
  appserviceOutOfBand,
  appserviceOutbox,
  appserviceRoomList,
};
