// Its own module because sample deliveries stamp it too: importing it pulls in no I/O.
/** Medblocks' API version the bots speak (the `Version` header and every event's `api_version`), as the tools do. */
export const MEDBLOCKS_API_VERSION = '2026-04-25';
