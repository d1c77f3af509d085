// TEMPORARY, for type checking only until web/pkg/ (wasm-bindgen output of crates/hearth-web)
// exists: the API of pkg/hearth_web.js as agreed. Applies only while that file is missing.
// Delete this file once pkg/ is generated.
declare module '*/pkg/hearth_web.js' {
  export default function init(module_or_path?: {
    module_or_path: string | URL | Response | BufferSource;
  }): Promise<unknown>;
  export class Homeserver {
    private constructor();
    static start(options: { database: string }): Promise<Homeserver>;
    readonly serverName: string;
    handleRequest(request: Request): Promise<Response>;
    stop(): Promise<void>;
  }
}
