/**
 * A JSON response body already serialised (sync's fan-out path splices shared
 * text): the pipeline sends `json` as it is instead of stringifying an object.
 */
export class SerializedJson {
  /** The UTF-8 bytes, when made once for an answer many requests share. */
  readonly bytes: Buffer | undefined;

  constructor(
    readonly json: string,
    bytes?: Buffer,
  ) {
    this.bytes = bytes;
  }

  /**
   * The body of an answer object that many requests may get (long-polls woken by one
   * message share one fan-out answer): its bytes are encoded once, kept with the object,
   * and the same Buffer is written to every connection.
   */
  static shared(answer: { readonly json: string }): SerializedJson {
    let bytes = encoded.get(answer);
    if (bytes === undefined) {
      bytes = Buffer.from(answer.json);
      encoded.set(answer, bytes);
    }
    return new SerializedJson(answer.json, bytes);
  }
}

const encoded = new WeakMap<object, Buffer>();
