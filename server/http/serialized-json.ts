/**
 * A JSON response body already serialised (sync's fan-out path splices shared
 * text): the pipeline sends `json` as it is instead of stringifying an object.
 */
export class SerializedJson {
  constructor(readonly json: string) {}
}
