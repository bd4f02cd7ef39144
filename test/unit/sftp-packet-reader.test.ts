import { BadMessage, MAX_PACKET, PacketReader } from '../../src/sftp/protocol';

// The SFTP framing: however a client cuts its bytes, each byte is copied at most once, so one
// maximal packet sent a couple of bytes per SSH message costs time linear in its size (work is
// counted in bytes copied, not in seconds, so a busy machine cannot make this pass or fail).

function framed(type: number, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(body.length + 1, 0);
  head[4] = type;
  return Buffer.concat([head, body]);
}

/** Pushes `bytes` in pieces of `size`; returns the packets and the bytes Buffer#copy moved meanwhile. */
function feed(bytes: Buffer, size: number): { packets: Buffer[]; copied: number } {
  const reader = new PacketReader();
  const packets: Buffer[] = [];
  let copied = 0;
  const copy = Buffer.prototype.copy as (this: Buffer, ...args: unknown[]) => number;
  const spy = jest.spyOn(Buffer.prototype, 'copy').mockImplementation(function (this: Buffer, ...args: unknown[]) {
    const n = copy.apply(this, args);
    copied += n;
    return n;
  });
  try {
    for (let pos = 0; pos < bytes.length; pos += size) reader.push(bytes.subarray(pos, pos + size), (p) => packets.push(Buffer.from(p)));
  } finally {
    spy.mockRestore();
  }
  expect(reader.buffered).toBe(0);
  return { packets, copied };
}

it('a maximal packet sent 2 bytes at a time is reassembled copying each byte once', () => {
  const body = Buffer.alloc(MAX_PACKET - 1);
  for (let i = 0; i < body.length; i++) body[i] = i % 251;
  const whole = framed(250, body);
  const { packets, copied } = feed(whole, 2);
  expect(packets).toHaveLength(1);
  expect(packets[0].equals(whole.subarray(4))).toBe(true);
  // The 4 length bytes into the header buffer and the packet's bytes into its own: nothing twice.
  expect(copied).toBe(whole.length);
});

it('packets cut at every position come out whole and in order, and one inside a chunk is not copied', () => {
  const stream = Buffer.concat([framed(17, Buffer.from('abc')), framed(3, Buffer.alloc(300, 7)), framed(1, Buffer.alloc(0)), framed(16, Buffer.from('.'))]);
  const expected = [Buffer.from('\x11abc'), Buffer.concat([Buffer.from([3]), Buffer.alloc(300, 7)]), Buffer.from([1]), Buffer.from('\x10.')];
  for (let size = 1; size <= stream.length; size++) {
    const { packets, copied } = feed(stream, size);
    expect(packets).toEqual(expected);
    expect(copied).toBeLessThanOrEqual(stream.length);
  }
  expect(feed(stream, stream.length).copied).toBe(0);
});

it('a length of zero or over the limit is a BadMessage before anything is buffered', () => {
  for (const len of [0, MAX_PACKET + 1, 0xffffffff]) {
    const head = Buffer.alloc(4);
    head.writeUInt32BE(len, 0);
    const reader = new PacketReader();
    expect(() => reader.push(head, () => undefined)).toThrow(BadMessage);
    const split = new PacketReader();
    split.push(head.subarray(0, 3), () => undefined);
    expect(() => split.push(head.subarray(3), () => undefined)).toThrow(BadMessage);
    expect(split.buffered).toBe(0);
  }
});
