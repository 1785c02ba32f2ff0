/**
 * The homeserver's configuration, declared once: this schema validates the
 * YAML at start-up (unknown keys and wrong types are errors), fills defaults,
 * types the result, and generates config.sample.yaml with its comments.
 */
import { type Static, type TSchema, Type } from '@sinclair/typebox';

const Section = <T extends Parameters<typeof Type.Object>[0]>(description: string, properties: T) =>
  Type.Object(properties, { description, additionalProperties: false, default: {} });

/** A string enum rendered as JSON Schema `enum` (clear errors, unlike a union of constants). */
const StringEnum = <T extends string>(values: readonly T[], options: { default?: T; description: string }) =>
  Type.Unsafe<T>({ type: 'string', enum: [...values], ...options });

const RateLimit = (description: string, perSecond: number, burst: number) =>
  Section(description, {
    per_second: Type.Number({
      minimum: 0,
      default: perSecond,
      description: 'Sustained requests per second.',
    }),
    burst: Type.Integer({ minimum: 1, default: burst, description: 'Requests allowed in a burst.' }),
  });

export const LISTENER_RESOURCES = ['client', 'federation', 'media', 'docs', 'health', 'metrics'] as const;
export const ListenerResource = StringEnum(LISTENER_RESOURCES, {
  description: 'An API this listener serves.',
});

const Listener = Type.Object(
  {
    port: Type.Integer({
      minimum: 0,
      maximum: 65535,
      default: 8008,
      description: 'TCP port (0 picks a free one).',
    }),
    bind_addresses: Type.Array(Type.String({ minLength: 1 }), {
      default: ['127.0.0.1'],
      description: 'Addresses to listen on, e.g. ["::", "0.0.0.0"] for all interfaces.',
    }),
    x_forwarded: Type.Boolean({
      default: false,
      description:
        'Trust X-Forwarded-For / X-Forwarded-Proto from a reverse proxy in front of this listener.',
    }),
    resources: Type.Array(ListenerResource, {
      default: ['client', 'federation', 'media', 'docs', 'health', 'metrics'],
      description: 'APIs served on this listener.',
    }),
    tls: Type.Object(
      {
        cert_file: Type.String({
          default: '',
          description:
            'PEM certificate chain; with key_file, this listener speaks HTTPS (federation: port 8448).',
        }),
        key_file: Type.String({ default: '', description: 'PEM private key of cert_file.' }),
      },
      {
        description: 'TLS for this listener; both empty means plain HTTP (behind a TLS-terminating proxy).',
        additionalProperties: false,
        default: {},
      },
    ),
  },
  { additionalProperties: false },
);

export const ConfigSchema = Type.Object(
  {
    server_name: Type.String({
      minLength: 1,
      description:
        'The domain in user and room IDs (@alice:SERVER_NAME). Cannot change once users exist. May carry a port.',
    }),
    public_baseurl: Type.String({
      format: 'uri',
      description: 'The URL clients reach this server at, e.g. https://matrix.example.org/.',
    }),
    data_dir: Type.String({
      minLength: 1,
      description:
        'Folder for the database, media and keys. Relative paths resolve against the working directory.',
    }),
    signing_key_path: Type.String({
      minLength: 1,
      description: 'The ed25519 key that signs events and federation requests (generated if missing).',
    }),
    listeners: Type.Array(Listener, {
      minItems: 1,
      default: [{}],
      description: 'HTTP listeners. Put TLS in a reverse proxy in front of them.',
    }),
    database: Section('Where state is kept.', {
      backend: StringEnum(['sqlite', 'postgres'], {
        default: 'sqlite',
        description: 'sqlite (embedded, the default) or postgres (scale-out).',
      }),
      sqlite: Section('Embedded database settings.', {
        path: Type.String({
          default: '',
          description: 'Database file; empty means DATA_DIR/homeserver.db.',
        }),
      }),
      postgres: Section('PostgreSQL settings (used when backend is postgres).', {
        url: Type.String({ default: 'postgres://127.0.0.1:5432/myelin', description: 'Connection URL.' }),
        pool_size: Type.Integer({ minimum: 1, default: 10, description: 'Connections in the pool.' }),
      }),
    }),
    registration: Section('Who may create accounts.', {
      mode: StringEnum(['open', 'token', 'closed'], {
        default: 'closed',
        description: 'open: anyone; token: only with a registration token; closed: only admins and the CLI.',
      }),
      allow_guests: Type.Boolean({ default: false, description: 'Allow guest accounts.' }),
      password_min_length: Type.Integer({
        minimum: 1,
        default: 8,
        description: 'Shortest password accepted.',
      }),
      password_require_digit: Type.Boolean({ default: false, description: 'Passwords need a digit.' }),
      password_require_lowercase: Type.Boolean({
        default: false,
        description: 'Passwords need a lowercase letter.',
      }),
      password_require_uppercase: Type.Boolean({
        default: false,
        description: 'Passwords need an uppercase letter.',
      }),
      password_require_symbol: Type.Boolean({ default: false, description: 'Passwords need a symbol.' }),
      reserved_localparts: Type.Array(Type.String(), {
        default: [
          'admin',
          'administrator',
          'root',
          'support',
          'security',
          'abuse',
          'postmaster',
          'webmaster',
        ],
        description:
          'Usernames nobody may register through the API (operators can still create them with the CLI).',
      }),
      shared_secret_path: Type.String({
        default: '',
        description:
          'File holding the shared secret for Synapse-compatible /_synapse/admin/v1/register (used by `myelin register-user`); empty means DATA_DIR/registration_shared_secret, generated if missing.',
      }),
    }),
    sessions: Section('Login sessions and access tokens (JWTs signed by this server).', {
      secret_path: Type.String({
        default: '',
        description:
          'File holding the key that signs access tokens; empty means DATA_DIR/session.key, generated if missing.',
      }),
      access_token_lifetime_ms: Type.Integer({
        minimum: 60_000,
        default: 300_000,
        description:
          'Lifetime of access tokens issued with a refresh token; tokens of clients without refresh support do not expire.',
      }),
      refresh_token_lifetime_ms: Type.Integer({
        minimum: 0,
        default: 0,
        description: 'Lifetime of refresh tokens; 0 means they do not expire (they rotate on every use).',
      }),
      login_token_lifetime_ms: Type.Integer({
        minimum: 1000,
        default: 120_000,
        description: 'Lifetime of single-use m.login.token tokens from /login/get_token.',
      }),
    }),
    password_hashing: Section(
      'The scrypt key derivation for stored passwords (memory-hard; runs off the event loop).',
      {
        scrypt_log_n: Type.Integer({
          minimum: 10,
          maximum: 20,
          default: 17,
          description:
            'log2 of the scrypt cost N (17: 128 MiB per hash, the OWASP recommendation). Lower only for tests.',
        }),
        scrypt_r: Type.Integer({ minimum: 1, maximum: 32, default: 8, description: 'scrypt block size r.' }),
        scrypt_p: Type.Integer({
          minimum: 1,
          maximum: 16,
          default: 1,
          description: 'scrypt parallelisation p.',
        }),
      },
    ),
    jwt_login: Section("Login with a JWT from the organisation's identity provider (org.matrix.login.jwt).", {
      enabled: Type.Boolean({ default: false, description: 'Offer and accept org.matrix.login.jwt.' }),
      secret_path: Type.String({
        default: '',
        description: 'File holding the shared secret, for HS256/HS384/HS512.',
      }),
      public_key_path: Type.String({
        default: '',
        description: 'PEM public key file (SPKI), for RS*/PS*/ES*/EdDSA.',
      }),
      jwks_path: Type.String({
        default: '',
        description: 'JWKS file (a JSON Web Key Set) with the public keys.',
      }),
      algorithms: Type.Array(Type.String(), {
        default: ['HS256'],
        description: 'Accepted signing algorithms.',
      }),
      issuer: Type.String({ default: '', description: 'Required "iss" claim; empty accepts any.' }),
      audiences: Type.Array(Type.String(), {
        default: [],
        description: 'Accepted "aud" values; empty requires no "aud".',
      }),
      subject_claim: Type.String({
        default: 'sub',
        description: 'The claim that holds the localpart or user ID.',
      }),
      create_account: Type.Boolean({
        default: false,
        description: 'Create the account on its first JWT login.',
      }),
    }),
    presence: Section('Online status.', {
      enabled: Type.Boolean({ default: true, description: 'Track and share presence.' }),
      idle_after_ms: Type.Integer({
        minimum: 1000,
        default: 300_000,
        description: 'An online user with no activity for this long becomes unavailable.',
      }),
      offline_after_ms: Type.Integer({
        minimum: 1000,
        default: 1_800_000,
        description: 'A user with no request (sync or other) for this long becomes offline.',
      }),
    }),
    user_directory: Section('User search (/user_directory/search).', {
      search_all_users: Type.Boolean({
        default: false,
        description:
          'Search every local user, not only users who share a room with the searcher or are in public rooms.',
      }),
    }),
    rate_limits: Section('Per-client request rate limits (token bucket). Exceeding one answers 429.', {
      enabled: Type.Boolean({ default: true, description: 'Turn every limit on or off.' }),
      exempt_admins: Type.Boolean({ default: true, description: 'Server admins are not rate limited.' }),
      client: RateLimit('Ordinary client requests, per user or IP.', 10, 50),
      login: RateLimit('Login attempts, per IP and per account.', 0.17, 3),
      registration: RateLimit('Registrations, per IP.', 0.17, 3),
      federation: RateLimit(
        'Signed requests from another server, per origin server (a peer that floods is answered 429 and retries later).',
        50,
        500,
      ),
    }),
    limits: Section('Size limits.', {
      max_request_body_bytes: Type.Integer({
        minimum: 1024,
        default: 1_048_576,
        description:
          'Largest JSON request body accepted (413 M_TOO_LARGE above). Media uploads have their own limit.',
      }),
      max_event_bytes: Type.Integer({
        minimum: 1024,
        maximum: 65_536,
        default: 65_536,
        description: 'Largest event, as canonical JSON (the spec caps it at 65536).',
      }),
    }),
    media: Section('Uploaded files.', {
      store_path: Type.String({ default: '', description: 'Folder for media; empty means DATA_DIR/media.' }),
      max_upload_bytes: Type.Integer({
        minimum: 1,
        default: 52_428_800,
        description: 'Largest upload (413 M_TOO_LARGE above).',
      }),
      user_quota_bytes: Type.Integer({
        minimum: 0,
        default: 0,
        description: 'Total bytes one user may upload (413 M_TOO_LARGE above); 0 means no quota.',
      }),
      max_pending_uploads: Type.Integer({
        minimum: 1,
        default: 10,
        description: 'Media IDs a user may hold from /create without uploading (429 M_LIMIT_EXCEEDED above).',
      }),
      unused_id_lifetime_ms: Type.Integer({
        minimum: 1000,
        default: 86_400_000,
        description: 'How long an ID from /create waits for its upload before it expires.',
      }),
      unauthenticated_reads: StringEnum(['frozen', 'open', 'disabled'], {
        default: 'frozen',
        description:
          'The deprecated /_matrix/media/v3 download, thumbnail, config and preview endpoints: frozen serves only media uploaded while they were open (the spec\'s "freeze"), open serves everything, disabled serves nothing.',
      }),
      max_image_pixels: Type.Integer({
        minimum: 1,
        default: 40_000_000,
        description:
          'Largest image (width x height) decoded for thumbnails, previews and re-encoding; bigger ones are refused (decompression bombs).',
      }),
      thumbnails: Section('Thumbnails (made on first request, then cached).', {
        enabled: Type.Boolean({ default: true, description: 'Serve thumbnails.' }),
        animated: Type.Boolean({
          default: true,
          description: 'Animated thumbnails of GIF and WebP when asked.',
        }),
      }),
      encryption: Section('Encryption at rest (AES-256-GCM in authenticated chunks).', {
        enabled: Type.Boolean({
          default: false,
          description: 'Store new media encrypted; stored media stays readable either way.',
        }),
        key: Type.String({
          default: '',
          description: 'The 32-byte key, base64. Prefer key_path; empty means key_path.',
        }),
        key_path: Type.String({
          default: '',
          description:
            'File holding the base64 key (made on first start if missing); empty means DATA_DIR/media.key.',
        }),
      }),
      compression: Section('Shrinking uploads.', {
        strip_image_metadata: Type.Boolean({
          default: true,
          description:
            'Remove EXIF (GPS, camera), XMP, IPTC and comments from JPEG and PNG; orientation is kept.',
        }),
        reencode_images_over_bytes: Type.Integer({
          minimum: 0,
          default: 1_048_576,
          description:
            'Re-encode JPEG, PNG and WebP images larger than this at the same dimensions (visually lossless), keeping whichever is smaller; 0 turns it off.',
        }),
        jpeg_quality: Type.Integer({
          minimum: 1,
          maximum: 100,
          default: 90,
          description: 'Quality of re-encoded JPEG and WebP images.',
        }),
        transcode_audio_over_bytes: Type.Integer({
          minimum: 0,
          default: 1_048_576,
          description:
            'Transcode audio larger than this to Opus with ffmpeg (when installed); 0 turns it off.',
        }),
        audio_bitrate: Type.String({ default: '48k', description: 'Opus bitrate (ffmpeg -b:a).' }),
        transcode_video_over_bytes: Type.Integer({
          minimum: 0,
          default: 20_971_520,
          description:
            'Transcode video larger than this to H.264/AAC MP4 with ffmpeg (when installed); 0 turns it off.',
        }),
        video_bitrate: Type.String({ default: '2M', description: 'H.264 bitrate (ffmpeg -b:v).' }),
      }),
      url_preview: Section('GET /media/preview_url (OpenGraph data of a web page).', {
        enabled: Type.Boolean({ default: true, description: 'Serve URL previews.' }),
        ip_denylist: Type.Array(Type.String(), {
          default: [],
          description:
            'Extra CIDR ranges never fetched; loopback, private, link-local, multicast and other special ranges are always denied.',
        }),
        ip_allowlist: Type.Array(Type.String(), {
          default: [],
          description: 'CIDR ranges fetched even though denied (tests, an intranet).',
        }),
        max_page_bytes: Type.Integer({
          minimum: 1024,
          default: 1_048_576,
          description: 'Largest page or image read for a preview.',
        }),
        timeout_ms: Type.Integer({
          minimum: 100,
          default: 10_000,
          description: 'Time limit of one preview fetch.',
        }),
        cache_ttl_ms: Type.Integer({
          minimum: 0,
          default: 3_600_000,
          description: 'How long a preview is cached.',
        }),
      }),
      retention: Section('Clean-up job.', {
        schedule: Type.String({
          default: '17 3 * * *',
          description: 'When it runs (cron syntax); empty turns the job off.',
        }),
        local_media_lifetime_days: Type.Integer({
          minimum: 0,
          default: 0,
          description: 'Delete local media not downloaded for this many days; 0 keeps media forever.',
        }),
      }),
    }),
    logging: Section('Logs (structured JSON on stdout).', {
      level: StringEnum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'], {
        default: 'info',
        description: 'Lowest level written.',
      }),
    }),
    well_known: Section('What /.well-known/matrix/* answers.', {
      client_base_url: Type.String({
        default: '',
        description: 'm.homeserver.base_url for clients; empty means public_baseurl.',
      }),
      identity_server_base_url: Type.String({
        default: '',
        description: 'm.identity_server.base_url for clients; empty leaves it out.',
      }),
      server_delegation: Type.String({
        default: '',
        description:
          'm.server for federation (host:port); empty means server_name (with :443 if it has no port).',
      }),
      support_contacts: Type.Array(
        Type.Object(
          {
            role: Type.String({
              minLength: 1,
              description: 'm.role.admin, m.role.security or a namespaced role.',
            }),
            matrix_id: Type.Optional(Type.String({ pattern: '^@', description: 'A user ID to reach them.' })),
            email_address: Type.Optional(Type.String({ minLength: 3, description: 'An email address.' })),
          },
          { additionalProperties: false },
        ),
        {
          default: [],
          description:
            'Ways to reach the administrators, in /.well-known/matrix/support (each with a matrix_id or an email_address).',
        },
      ),
      support_page: Type.String({
        default: '',
        description: 'A support web page for /.well-known/matrix/support; empty leaves it out.',
      }),
    }),
    voip: Section('TURN credentials for calls (GET /voip/turnServer).', {
      turn_uris: Type.Array(Type.String({ pattern: '^turns?:' }), {
        default: [],
        description: 'TURN server URIs (turn:host:port?transport=udp); empty: no TURN is offered.',
      }),
      turn_shared_secret: Type.String({
        default: '',
        description:
          "coturn's static-auth-secret: time-limited credentials are made from it (preferred to a fixed user).",
      }),
      turn_username: Type.String({
        default: '',
        description: 'A fixed TURN user, when no shared secret is set.',
      }),
      turn_password: Type.String({ default: '', description: "The fixed TURN user's password." }),
      turn_user_lifetime_seconds: Type.Integer({
        minimum: 60,
        default: 86_400,
        description: 'How long credentials made from the shared secret stay valid.',
      }),
      turn_allow_guests: Type.Boolean({ default: true, description: 'Give TURN credentials to guests too.' }),
    }),
    federation: Section('Server-Server API.', {
      enabled: Type.Boolean({ default: true, description: 'Federate with other homeservers.' }),
      domain_allowlist: Type.Array(Type.String(), {
        default: [],
        description: 'If not empty, federate only with these server names.',
      }),
      domain_denylist: Type.Array(Type.String(), { default: [], description: 'Never federate with these.' }),
      trusted_key_servers: Type.Array(Type.String(), {
        default: ['matrix.org'],
        description:
          "Notary servers asked for other servers' signing keys when a server cannot be asked itself (their own keys are fetched from them directly).",
      }),
      ca_file: Type.String({
        default: '',
        description:
          'PEM file of extra certificate authorities trusted for outbound federation TLS, besides the system roots (private deployments, tests).',
      }),
      resolver_overrides: Type.Record(Type.String(), Type.String(), {
        default: {},
        description:
          'Server name -> host:port to connect to instead of resolving it (private deployments, tests); TLS is still checked, against the server name.',
      }),
      request_timeout_ms: Type.Integer({
        minimum: 1000,
        default: 60_000,
        description: 'Longest an outbound federation request may take, connection included.',
      }),
      max_response_bytes: Type.Integer({
        minimum: 65_536,
        default: 67_108_864,
        description: 'Largest outbound federation response body accepted.',
      }),
      key_validity_period_ms: Type.Integer({
        minimum: 3_600_000,
        default: 86_400_000,
        description: "How far ahead this server's published keys are declared valid (valid_until_ts).",
      }),
      old_signing_keys_path: Type.String({
        default: '',
        description:
          'JSON file of keys this server signed with before (written by `myelin rotate-signing-key`), published as old_verify_keys; empty means SIGNING_KEY_PATH.old.json.',
      }),
      retry_min_backoff_ms: Type.Integer({
        minimum: 10,
        default: 5_000,
        description:
          'First wait before retrying a destination that failed; doubled (with jitter) at each failure.',
      }),
      retry_max_backoff_ms: Type.Integer({
        minimum: 10,
        default: 3_600_000,
        description: 'Longest wait between retries of a destination that is down.',
      }),
    }),
    search: Section('Server-side search (/search) and its index.', {
      backend: StringEnum(['sqlite', 'postgres'], {
        default: 'sqlite',
        description:
          'sqlite: FTS5 in the homeserver database (the default); postgres: tsvector + GIN in PostgreSQL (scale-out).',
      }),
      postgres: Section('The PostgreSQL search index (used when backend is postgres).', {
        url: Type.String({
          default: 'postgres://127.0.0.1:5432/myelin',
          description: 'Connection URL.',
        }),
        schema: Type.String({
          default: 'myelin_search',
          minLength: 1,
          description: 'Schema holding the search tables (created if missing); one per homeserver.',
        }),
        pool_size: Type.Integer({ minimum: 1, default: 4, description: 'Connections in the pool.' }),
      }),
    }),
    retention: Section(
      'Operator retention: old messages move to compressed cold storage (spec/retention.md).',
      {
        enabled: Type.Boolean({ default: false, description: 'Run the retention job on its schedule.' }),
        schedule: Type.String({
          default: '17 3 * * *',
          description: 'When the job runs (cron syntax, server local time).',
        }),
        default_max_lifetime_ms: Type.Integer({
          minimum: 0,
          default: 0,
          description: 'Age after which messages of rooms without m.room.retention go cold; 0: never.',
        }),
        min_lifetime_ms: Type.Integer({
          minimum: 0,
          default: 86_400_000,
          description:
            "Shortest m.room.retention max_lifetime honoured (a room's shorter value is raised to it).",
        }),
        max_lifetime_ms: Type.Integer({
          minimum: 0,
          default: 0,
          description: 'Longest m.room.retention max_lifetime honoured; 0: no bound.',
        }),
        segment_max_events: Type.Integer({
          minimum: 1,
          default: 5000,
          description: 'Events per cold segment file.',
        }),
      },
    ),
    push: Section('Push notifications to push gateways (client-server "Push Notifications").', {
      enabled: Type.Boolean({
        default: true,
        description: 'Deliver notifications to pushers; unread counts and /notifications work either way.',
      }),
      allow_private_gateways: Type.Boolean({
        default: false,
        description:
          'Allow push gateway URLs that resolve to loopback, private or link-local addresses (tests, a gateway on the same host). Off, such pushers are refused and never contacted (no SSRF).',
      }),
      allowed_gateway_hosts: Type.Array(Type.String(), {
        default: [],
        description: 'If not empty, push gateway URLs must have one of these host names.',
      }),
      request_timeout_ms: Type.Integer({
        minimum: 100,
        default: 10_000,
        description: 'How long one request to a push gateway may take before it is retried.',
      }),
      max_retry_delay_ms: Type.Integer({
        minimum: 10,
        default: 300_000,
        description:
          'Longest wait between retries of a failing gateway (the delay doubles from initial_retry_delay_ms up to this).',
      }),
      initial_retry_delay_ms: Type.Integer({
        minimum: 1,
        default: 1000,
        description: 'First wait before retrying a failed delivery.',
      }),
      max_attempts: Type.Integer({
        minimum: 1,
        default: 10,
        description: 'Attempts per notification before it is dropped.',
      }),
      max_pending_pushes: Type.Integer({
        minimum: 1,
        default: 100_000,
        description:
          'Notified users waiting for push delivery, at most (about 1 KB each). Delivery runs at the lowest CPU priority; past this bound (a saturated CPU or slow gateways) new notifications are not pushed, and a warning says how many, until half are delivered. Unread counts and /notifications still show them.',
      }),
      delivery_quiet_ms: Type.Integer({
        minimum: 0,
        default: 15,
        description:
          'Push delivery yields the CPU to sends: while events are being sent, notifications are handed to the delivery worker and new gateway requests start only once no event was sent for this long (requests under way finish). Each push is delayed by about this much (up to 1.5 times it), on a busy server by up to delivery_max_hold_ms. 0: no holding.',
      }),
      delivery_max_hold_ms: Type.Integer({
        minimum: 0,
        default: 250,
        description:
          "Longest a push is held back waiting for sends to pause (delivery_quiet_ms): then everything held starts, so a server that sends without pause still pushes, at most this much later (up to twice this when the delivery worker must first look up the user's pushers). 0: never held.",
      }),
    }),
    app_service_config_files: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description:
        'Registration files (YAML) of the application services (bridges, bots) this server serves: id, url, as_token, hs_token, sender_localpart, namespaces, rate_limited, protocols, receive_ephemeral. Checked at start-up.',
    }),
    appservice: Section('Delivery of events to application services.', {
      request_timeout_ms: Type.Integer({
        minimum: 100,
        default: 30_000,
        description: 'How long one transaction (or ping) to an application service may take.',
      }),
      max_retry_delay_ms: Type.Integer({
        minimum: 10,
        default: 300_000,
        description:
          'Longest wait between retries of an unreachable application service (the delay doubles from initial_retry_delay_ms).',
      }),
      initial_retry_delay_ms: Type.Integer({
        minimum: 1,
        default: 1000,
        description: 'First wait before retrying a transaction the application service did not accept.',
      }),
      max_events_per_transaction: Type.Integer({
        minimum: 1,
        default: 100,
        description: 'Most events sent in one transaction.',
      }),
    }),
    docs: Section('API documentation.', {
      enabled: Type.Boolean({ default: true, description: 'Serve Swagger UI at /_matrix/docs.' }),
    }),
    cors: Section('Browser access (the spec asks for open CORS on the client API).', {
      allowed_origins: Type.Array(Type.String(), {
        default: ['*'],
        description: 'Origins allowed; ["*"] for any.',
      }),
    }),
    identity: Section('Identity servers named by clients (third-party invites: lookup and store-invite).', {
      allow_private_addresses: Type.Boolean({
        default: false,
        description:
          'Allow identity servers that resolve to loopback, private or link-local addresses, over plain HTTP (tests, an identity server on the same host). Off, only HTTPS to public addresses (no SSRF).',
      }),
      request_timeout_ms: Type.Integer({
        minimum: 100,
        default: 10_000,
        description: 'Time limit of one request to an identity server.',
      }),
    }),
  },
  { additionalProperties: false },
);

export type MyelinConfig = Static<typeof ConfigSchema>;
export type ListenerConfig = MyelinConfig['listeners'][number];
export type ConfigSchemaNode = TSchema;
