using System;
using System.Collections.Generic;

namespace Moonforge
{
    /// <summary>One frame of protocol v1 (docs/protocol.md): the message id, flags, seq and payload.</summary>
    public struct Frame
    {
        /// <summary>Size of the length prefix on byte streams (TCP).</summary>
        public const int LengthSize = 4;

        /// <summary>msg_id, flags and seq: what the length counts before the payload.</summary>
        public const int HeaderSize = 8;

        /// <summary>The REPLY flag bit.</summary>
        public const ushort FlagReply = 0x0001;

        /// <summary>The server's default maximum of the length field (1 MiB).</summary>
        public const int DefaultMaxLength = 1 << 20;

        /// <summary>Creates a frame; payload null means empty.</summary>
        public Frame(ushort msgId, ushort flags, uint seq, byte[] payload)
            : this()
        {
            MsgId = msgId;
            Flags = flags;
            Seq = seq;
            Payload = payload ?? Proto.EmptyBytes;
        }

        /// <summary>Which message the payload is.</summary>
        public ushort MsgId { get; private set; }

        /// <summary>Flag bits; only <see cref="FlagReply"/> is defined.</summary>
        public ushort Flags { get; private set; }

        /// <summary>Request seq, reply seq, or push seq (0 for one-way messages and Kick).</summary>
        public uint Seq { get; private set; }

        /// <summary>The message's encoding; never null. The frame owns it: do not change it.</summary>
        public byte[] Payload { get; private set; }

        /// <summary>Whether the REPLY flag is set.</summary>
        public bool IsReply
        {
            get { return (Flags & FlagReply) != 0; }
        }
    }

    /// <summary>Encodes and decodes frames: stream form (with the 4-byte length, for TCP) and bare form
    /// (one WebSocket message). Stateless and safe for concurrent use.</summary>
    public static class FrameCodec
    {
        /// <summary>Bytes of frame f in stream form.</summary>
        public static int StreamSize(Frame f)
        {
            return Frame.LengthSize + Frame.HeaderSize + f.Payload.Length;
        }

        /// <summary>Writes f in stream form at dst[offset]; returns the bytes written.</summary>
        public static int WriteStream(Frame f, byte[] dst, int offset)
        {
            PutUInt32(dst, offset, (uint)(Frame.HeaderSize + f.Payload.Length));
            return Frame.LengthSize + WriteBare(f, dst, offset + Frame.LengthSize);
        }

        /// <summary>Writes frames in stream form, back to back, from buf[0], growing buf when they do not
        /// fit; returns the bytes written.</summary>
        public static int WriteStreams(IList<Frame> frames, ref byte[] buf)
        {
            int size = 0;
            for (int i = 0; i < frames.Count; i++) size += StreamSize(frames[i]);
            if (buf.Length < size) buf = new byte[Math.Max(size, buf.Length * 2)];
            int n = 0;
            for (int i = 0; i < frames.Count; i++) n += WriteStream(frames[i], buf, n);
            return n;
        }

        /// <summary>Writes f in bare form at dst[offset]; returns the bytes written.</summary>
        public static int WriteBare(Frame f, byte[] dst, int offset)
        {
            dst[offset] = (byte)(f.MsgId >> 8);
            dst[offset + 1] = (byte)f.MsgId;
            dst[offset + 2] = (byte)(f.Flags >> 8);
            dst[offset + 3] = (byte)f.Flags;
            PutUInt32(dst, offset + 4, f.Seq);
            Buffer.BlockCopy(f.Payload, 0, dst, offset + Frame.HeaderSize, f.Payload.Length);
            return Frame.HeaderSize + f.Payload.Length;
        }

        /// <summary>f in stream form, in a new array.</summary>
        public static byte[] EncodeStream(Frame f)
        {
            var b = new byte[StreamSize(f)];
            WriteStream(f, b, 0);
            return b;
        }

        /// <summary>f in bare form, in a new array.</summary>
        public static byte[] EncodeBare(Frame f)
        {
            var b = new byte[Frame.HeaderSize + f.Payload.Length];
            WriteBare(f, b, 0);
            return b;
        }

        /// <summary>
        /// Decodes the first frame of buf[offset, offset+count), a byte stream. False when more bytes are
        /// needed; then consumed is 0. A violation is reported as soon as the bytes that show it are there.
        /// </summary>
        /// <exception cref="MoonforgeException">MalformedFrame or FrameTooLarge: the connection must be closed.</exception>
        public static bool TryDecodeStream(byte[] buf, int offset, int count, int maxLength, out Frame frame, out int consumed)
        {
            frame = default(Frame);
            consumed = 0;
            if (count < Frame.LengthSize) return false;
            uint length = (uint)buf[offset] << 24 | (uint)buf[offset + 1] << 16 | (uint)buf[offset + 2] << 8 | buf[offset + 3];
            CheckLength(length, maxLength);
            if (count - Frame.LengthSize < length) return false;
            frame = Parse(buf, offset + Frame.LengthSize, (int)length);
            consumed = Frame.LengthSize + (int)length;
            return true;
        }

        /// <summary>Decodes a bare frame (a whole WebSocket message).</summary>
        /// <exception cref="MoonforgeException">MalformedFrame or FrameTooLarge.</exception>
        public static Frame DecodeBare(byte[] buf, int offset, int count, int maxLength)
        {
            if (count < Frame.HeaderSize)
            {
                throw new MoonforgeException(ErrorCode.MalformedFrame, "message of " + count + " bytes is shorter than a frame header");
            }
            CheckLength((uint)count, maxLength);
            return Parse(buf, offset, count);
        }

        /// <summary>Checks a length field against the limits of protocol v1.</summary>
        /// <exception cref="MoonforgeException">MalformedFrame below 8, FrameTooLarge above maxLength.</exception>
        public static void CheckLength(uint length, int maxLength)
        {
            if (length < Frame.HeaderSize)
            {
                throw new MoonforgeException(ErrorCode.MalformedFrame, "frame length " + length + " is below " + Frame.HeaderSize);
            }
            if (length > (uint)maxLength)
            {
                throw new MoonforgeException(ErrorCode.FrameTooLarge, "frame length " + length + " exceeds the maximum " + maxLength);
            }
        }

        private static Frame Parse(byte[] buf, int offset, int length)
        {
            ushort msgId = (ushort)(buf[offset] << 8 | buf[offset + 1]);
            ushort flags = (ushort)(buf[offset + 2] << 8 | buf[offset + 3]);
            uint seq = (uint)buf[offset + 4] << 24 | (uint)buf[offset + 5] << 16 | (uint)buf[offset + 6] << 8 | buf[offset + 7];
            if ((flags & ~Frame.FlagReply) != 0)
            {
                throw new MoonforgeException(ErrorCode.MalformedFrame, "unknown flag bits 0x" + (flags & ~Frame.FlagReply).ToString("x4"));
            }
            byte[] payload = Proto.EmptyBytes;
            if (length > Frame.HeaderSize)
            {
                payload = new byte[length - Frame.HeaderSize];
                Buffer.BlockCopy(buf, offset + Frame.HeaderSize, payload, 0, payload.Length);
            }
            return new Frame(msgId, flags, seq, payload);
        }

        private static void PutUInt32(byte[] dst, int offset, uint v)
        {
            dst[offset] = (byte)(v >> 24);
            dst[offset + 1] = (byte)(v >> 16);
            dst[offset + 2] = (byte)(v >> 8);
            dst[offset + 3] = (byte)v;
        }
    }
}
