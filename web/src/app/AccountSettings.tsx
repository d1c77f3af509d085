// Settings of the account: the picture people see, and the devices signed in to it (rename,
// sign out another one, whether each is verified).

import type { IMyDevice } from 'matrix-js-sdk';
import { MatrixError } from 'matrix-js-sdk';
import { useEffect, useState } from 'preact/hooks';
import { useApp } from './context';
import { displayName } from './names';
import { Avatar, ErrorLine, errorText } from './widgets';

/** The user's picture: uploaded to this homeserver, set as the profile's avatar. */
export function AvatarSetting() {
  const { client } = useApp();
  const me = client.getUserId() ?? '';
  const [mxc, setMxc] = useState<string | null | undefined>(client.getUser(me)?.avatarUrl);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const pick = async (file: File | undefined) => {
    if (!file) return;
    if (!file.type.startsWith('image/')) return setError('Pick an image');
    setBusy(true);
    setError(null);
    try {
      const { content_uri } = await client.uploadContent(file, { name: file.name, type: file.type });
      await client.setAvatarUrl(content_uri);
      setMxc(content_uri);
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="avatar-setting">
      <Avatar id={me} name={displayName(client, me)} mxc={mxc} size={56} />
      <label class="file-button">
        {busy ? 'Uploading…' : 'Change picture'}
        <input
          type="file"
          accept="image/*"
          class="visually-hidden"
          disabled={busy}
          aria-label="Profile picture"
          onChange={(event) => void pick((event.currentTarget).files?.[0])}
        />
      </label>
      <ErrorLine error={error} />
    </div>
  );
}

interface DeviceRow extends IMyDevice {
  verified: boolean | null;
}

/** `GET /devices` with each device's verification, renaming, and signing out another device
 *  (the spec asks for user-interactive authentication there: the account's password). */
export function Devices() {
  const { client } = useApp();
  const [devices, setDevices] = useState<DeviceRow[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [version, setVersion] = useState(0);
  const me = client.getUserId() ?? '';
  const mine = client.getDeviceId();
  useEffect(() => {
    let live = true;
    void (async () => {
      try {
        const { devices: list } = await client.getDevices();
        const crypto = client.getCrypto();
        const rows = await Promise.all(
          list.map(async (device) => {
            const status = crypto ? await crypto.getDeviceVerificationStatus(me, device.device_id).catch(() => null) : null;
            return { ...device, verified: status ? status.crossSigningVerified : null };
          }),
        );
        rows.sort((a, b) => (a.device_id === mine ? -1 : b.device_id === mine ? 1 : (b.last_seen_ts ?? 0) - (a.last_seen_ts ?? 0)));
        if (live) setDevices(rows);
      } catch (err) {
        if (live) setError(errorText(err));
      }
    })();
    return () => {
      live = false;
    };
  }, [client, me, mine, version]);

  const rename = async (device: DeviceRow) => {
    const name = prompt('A name for this device', device.display_name ?? '');
    if (name === null) return;
    setError(null);
    try {
      await client.setDeviceDetails(device.device_id, { display_name: name.trim() });
      setVersion(version + 1);
    } catch (err) {
      setError(errorText(err));
    }
  };
  const signOut = async (device: DeviceRow) => {
    setError(null);
    try {
      try {
        await client.deleteDevice(device.device_id);
      } catch (err) {
        // 401 with the flows: the server wants the password.
        const session = err instanceof MatrixError && err.httpStatus === 401 ? (err.data.session as string | undefined) : undefined;
        if (!(err instanceof MatrixError && err.httpStatus === 401)) throw err;
        const password = prompt(`Your password, to sign out “${device.display_name ?? device.device_id}”`);
        if (!password) return;
        await client.deleteDevice(device.device_id, {
          type: 'm.login.password',
          identifier: { type: 'm.id.user', user: me },
          password,
          session,
        });
      }
      setVersion(version + 1);
    } catch (err) {
      setError(errorText(err));
    }
  };

  if (devices === null) return error ? <ErrorLine error={error} /> : <p class="hint">Loading devices…</p>;
  return (
    <>
      <ul class="devices">
        {devices.map((device) => (
          <li key={device.device_id} data-device-id={device.device_id}>
            <span class="name">
              {device.display_name || device.device_id}
              {device.device_id === mine && <span class="hint"> (this device)</span>}
              <span class="hint">
                {' '}
                · {device.device_id}
                {device.last_seen_ts ? ` · last seen ${new Date(device.last_seen_ts).toLocaleString()}` : ''}
              </span>
            </span>
            <span class={device.verified ? 'verified-badge' : 'hint'}>{device.verified ? '✓ Verified' : device.verified === false ? 'Not verified' : ''}</span>
            <button type="button" class="small" onClick={() => void rename(device)} aria-label={`Rename ${device.display_name || device.device_id}`}>
              Rename
            </button>
            {device.device_id !== mine && (
              <button type="button" class="small danger" onClick={() => void signOut(device)} aria-label={`Sign out ${device.display_name || device.device_id}`}>
                Sign out
              </button>
            )}
          </li>
        ))}
      </ul>
      <ErrorLine error={error} />
    </>
  );
}
