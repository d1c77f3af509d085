// The page's relay setting: which relays the homeserver federates through. A `?relay=ADDR`
// query (repeatable) wins, then what the user saved, then the default of whoever serves the app
// (`/hearth-config.json`, which `cargo xtask dev` fills with its local relay).

const STORAGE_KEY = 'hearth.relays';

/** The relays to start with. */
export async function loadRelaySetting(): Promise<string[]> {
  const fromQuery = new URLSearchParams(location.search).getAll('relay').filter((relay) => relay.trim() !== '');
  if (fromQuery.length > 0) return fromQuery;
  const saved = localStorage.getItem(STORAGE_KEY);
  if (saved !== null) {
    try {
      const relays: unknown = JSON.parse(saved);
      if (Array.isArray(relays) && relays.every((relay) => typeof relay === 'string')) return relays;
    } catch {
      // A damaged setting falls back to the default.
    }
  }
  return serverDefault();
}

/** Saves the relays to federate through from the next start on (`[]`: none). */
export function saveRelaySetting(relays: string[]): void {
  localStorage.setItem(STORAGE_KEY, JSON.stringify(relays));
}

/** Forgets the saved relays: the server's default applies again. */
export function resetRelaySetting(): void {
  localStorage.removeItem(STORAGE_KEY);
}

async function serverDefault(): Promise<string[]> {
  try {
    const response = await fetch('/hearth-config.json', { cache: 'no-store' });
    if (!response.ok) return [];
    const config = (await response.json()) as { relays?: unknown };
    return Array.isArray(config.relays) ? config.relays.filter((relay): relay is string => typeof relay === 'string') : [];
  } catch {
    // Offline, or served without a config: no federation until the user sets a relay.
    return [];
  }
}

