export interface Device {
  readonly userId: string;
  readonly deviceId: string;
  readonly displayName: string | null;
  readonly createdTs: number;
  readonly lastSeenIp: string | null;
  readonly lastSeenTs: number | null;
  readonly lastSeenUserAgent: string | null;
}

export interface NewDevice {
  readonly userId: string;
  readonly deviceId: string;
  readonly displayName?: string | null;
  readonly createdTs: number;
}

export interface LastSeenUpdate {
  readonly userId: string;
  readonly deviceId: string;
  readonly ip: string | null;
  readonly ts: number;
  readonly userAgent: string | null;
}

export interface DeviceReader {
  getDevice(userId: string, deviceId: string): Promise<Device | null>;
  /** The user's devices ordered by device ID. */
  listDevices(userId: string): Promise<Device[]>;
}

export interface DeviceWriter {
  /** Throws CONFLICT for an existing (user, device), MISSING_REFERENCE for an unknown user. */
  createDevice(device: NewDevice): Promise<void>;
  /** Throws NOT_FOUND for an unknown device. */
  setDisplayName(userId: string, deviceId: string, displayName: string | null): Promise<void>;
  /** Deletes devices and, with them, their sessions and transaction IDs; unknown IDs are ignored. */
  deleteDevices(userId: string, deviceIds: readonly string[]): Promise<void>;
  /**
   * Records last-seen data for many devices in one write (collected from
   * requests and flushed periodically). Updates for unknown devices are
   * ignored; an older `ts` never overwrites a newer one.
   */
  recordLastSeen(updates: readonly LastSeenUpdate[]): Promise<void>;
}

export interface DeviceStore extends DeviceReader, DeviceWriter {}
