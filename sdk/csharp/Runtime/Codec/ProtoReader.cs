using System;

namespace Moonforge
{
    /// <summary>
    /// Reads the Protocol Buffers wire format from a byte array, as protobuf-go's decoder does: the same
    /// inputs are valid and invalid, a known field with an unexpected wire type is kept as an unknown
    /// field, and every problem is a <see cref="ProtoException"/> (never an index or overflow error).
    /// Generated code calls it; it is not safe for concurrent use.
    /// </summary>
    public sealed class ProtoReader
    {
        /// <summary>Largest field number.</summary>
        public const uint MaxFieldNumber = (1u << 29) - 1;

        /// <summary>Default nesting limit for messages and groups.</summary>
        public const int DefaultRecursionLimit = 100;

        private readonly byte[] buf;
        private readonly int start;
        private readonly int recursionLimit;
        private int pos;
        private int limit;
        private int depth;
        private uint tag;
        private int tagStart;

        /// <summary>Reads buffer[offset, offset+count). The reader does not copy the buffer: the caller
        /// must not change it while reading.</summary>
        public ProtoReader(byte[] buffer, int offset, int count)
            : this(buffer, offset, count, DefaultRecursionLimit)
        {
        }

        /// <summary>As the other constructor, with a limit on how deep messages and groups may nest.</summary>
        public ProtoReader(byte[] buffer, int offset, int count, int recursionLimit)
        {
            if (buffer == null) throw new ArgumentNullException("buffer");
            if (offset < 0 || count < 0 || offset > buffer.Length - count) throw new ArgumentOutOfRangeException("count");
            buf = buffer;
            start = offset;
            pos = offset;
            limit = offset + count;
            this.recursionLimit = recursionLimit;
        }

        /// <summary>The tag (field number &lt;&lt; 3 | wire type) that <see cref="ReadTag"/> read last.</summary>
        public uint Tag
        {
            get { return tag; }
        }

        /// <summary>True when the current limit (end of input or of the enclosing length) is reached.</summary>
        public bool AtLimit
        {
            get { return pos >= limit; }
        }

        /// <summary>Reads the next tag into <see cref="Tag"/>; false at the current limit.</summary>
        public bool ReadTag()
        {
            if (pos >= limit) return false;
            tagStart = pos;
            ulong v = ReadVarint64();
            ulong num = v >> 3;
            if (num == 0 || num > MaxFieldNumber) throw Fail("invalid field number " + num, tagStart);
            tag = (uint)v;
            return true;
        }

        /// <summary>Reads a varint of up to 10 bytes.</summary>
        public ulong ReadVarint64()
        {
            ulong result = 0;
            int begin = pos;
            for (int i = 0; ; i++)
            {
                if (pos >= limit) throw Fail("truncated varint", begin);
                byte b = buf[pos++];
                if (i == 9)
                {
                    if (b > 1) throw Fail("varint overflows 64 bits", begin);
                    return result | ((ulong)b << 63);
                }
                result |= (ulong)(b & 0x7F) << (7 * i);
                if (b < 0x80) return result;
            }
        }

        /// <summary>Reads an int32 (a varint truncated to 32 bits).</summary>
        public int ReadInt32() { return (int)ReadVarint64(); }

        /// <summary>Reads an int64.</summary>
        public long ReadInt64() { return (long)ReadVarint64(); }

        /// <summary>Reads a uint32 (a varint truncated to 32 bits).</summary>
        public uint ReadUInt32() { return (uint)ReadVarint64(); }

        /// <summary>Reads a uint64.</summary>
        public ulong ReadUInt64() { return ReadVarint64(); }

        /// <summary>Reads a zigzag sint32.</summary>
        public int ReadSInt32()
        {
            uint n = (uint)ReadVarint64();
            return (int)(n >> 1) ^ -(int)(n & 1);
        }

        /// <summary>Reads a zigzag sint64.</summary>
        public long ReadSInt64()
        {
            ulong n = ReadVarint64();
            return (long)(n >> 1) ^ -(long)(n & 1);
        }

        /// <summary>Reads a bool: any non-zero varint is true.</summary>
        public bool ReadBool() { return ReadVarint64() != 0; }

        /// <summary>Reads an enum number (unknown numbers are kept).</summary>
        public int ReadEnum() { return (int)ReadVarint64(); }

        /// <summary>Reads a little-endian fixed32.</summary>
        public uint ReadFixed32()
        {
            if (limit - pos < 4) throw Fail("truncated fixed32", pos);
            uint v = buf[pos] | (uint)buf[pos + 1] << 8 | (uint)buf[pos + 2] << 16 | (uint)buf[pos + 3] << 24;
            pos += 4;
            return v;
        }

        /// <summary>Reads a little-endian fixed64.</summary>
        public ulong ReadFixed64()
        {
            if (limit - pos < 8) throw Fail("truncated fixed64", pos);
            ulong lo = buf[pos] | (uint)buf[pos + 1] << 8 | (uint)buf[pos + 2] << 16 | (uint)buf[pos + 3] << 24;
            ulong hi = buf[pos + 4] | (uint)buf[pos + 5] << 8 | (uint)buf[pos + 6] << 16 | (uint)buf[pos + 7] << 24;
            pos += 8;
            return lo | hi << 32;
        }

        /// <summary>Reads an sfixed32.</summary>
        public int ReadSFixed32() { return (int)ReadFixed32(); }

        /// <summary>Reads an sfixed64.</summary>
        public long ReadSFixed64() { return (long)ReadFixed64(); }

        /// <summary>Reads a float, bit for bit (NaN payloads and -0 included).</summary>
        public float ReadFloat() { return FloatBits.ToFloat(ReadFixed32()); }

        /// <summary>Reads a double, bit for bit (NaN payloads and -0 included).</summary>
        public double ReadDouble() { return BitConverter.Int64BitsToDouble((long)ReadFixed64()); }

        /// <summary>Reads a length-delimited string, which must be valid UTF-8.</summary>
        public string ReadString()
        {
            int len = ReadLength();
            if (!Utf8.Valid(buf, pos, len)) throw Fail("string field is not valid UTF-8", pos);
            string s = len == 0 ? "" : Utf8.Strict.GetString(buf, pos, len);
            pos += len;
            return s;
        }

        /// <summary>Reads length-delimited bytes into a new array.</summary>
        public byte[] ReadBytes()
        {
            int len = ReadLength();
            var b = new byte[len];
            Buffer.BlockCopy(buf, pos, b, 0, len);
            pos += len;
            return b;
        }

        /// <summary>Reads a length-delimited message and merges it into message.</summary>
        public void ReadMessage(IMessage message)
        {
            int old = PushLimit();
            if (++depth > recursionLimit) throw Fail("messages nested deeper than " + recursionLimit, pos);
            message.MergeFrom(this);
            depth--;
            PopLimit(old);
        }

        /// <summary>Reads a length and makes the end of that length the current limit (for packed
        /// repeated fields and map entries). Returns the previous limit, for <see cref="PopLimit"/>.</summary>
        public int PushLimit()
        {
            int len = ReadLength();
            int old = limit;
            limit = pos + len;
            return old;
        }

        /// <summary>Restores the limit that <see cref="PushLimit"/> returned; the current limit must be reached.</summary>
        public void PopLimit(int oldLimit)
        {
            if (pos != limit) throw Fail("length-delimited field not fully read", pos);
            limit = oldLimit;
        }

        /// <summary>Skips the value of the field whose tag was read last and discards it.</summary>
        public void SkipField()
        {
            SkipValue(tag, 0);
        }

        /// <summary>Skips the value of the field whose tag was read last and appends the whole field,
        /// tag included, to unknown (created when null).</summary>
        public void ReadUnknown(ref UnknownFields unknown)
        {
            SkipValue(tag, 0);
            if (unknown == null) unknown = new UnknownFields();
            unknown.Append(buf, tagStart, pos - tagStart);
        }

        private int ReadLength()
        {
            int begin = pos;
            ulong len = ReadVarint64();
            if (len > (ulong)(limit - pos)) throw Fail("length " + len + " runs past the end", begin);
            return (int)len;
        }

        private void SkipValue(uint t, int groupDepth)
        {
            switch (t & 7)
            {
                case 0:
                    ReadVarint64();
                    return;
                case 1:
                    if (limit - pos < 8) throw Fail("truncated fixed64", pos);
                    pos += 8;
                    return;
                case 2:
                    int len = ReadLength(); // not "pos += ReadLength()", which adds to pos as it was before the read
                    pos += len;
                    return;
                case 3:
                    if (groupDepth + depth >= recursionLimit) throw Fail("groups nested deeper than " + recursionLimit, pos);
                    while (true)
                    {
                        if (pos >= limit) throw Fail("group without its end", pos);
                        int at = pos;
                        ulong inner = ReadVarint64();
                        ulong num = inner >> 3;
                        if (num == 0 || num > MaxFieldNumber) throw Fail("invalid field number " + num, at);
                        if ((inner & 7) == 4)
                        {
                            if (num != t >> 3) throw Fail("group ends with the wrong field number", at);
                            return;
                        }
                        SkipValue((uint)inner, groupDepth + 1);
                    }
                case 4:
                    throw Fail("end of group without its start", tagStart);
                case 5:
                    if (limit - pos < 4) throw Fail("truncated fixed32", pos);
                    pos += 4;
                    return;
                default:
                    throw Fail("reserved wire type " + (t & 7), tagStart);
            }
        }

        private ProtoException Fail(string message, int at)
        {
            return new ProtoException(message, at - start);
        }
    }
}
