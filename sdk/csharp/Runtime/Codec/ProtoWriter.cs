using System;

namespace Moonforge
{
    /// <summary>
    /// Writes the Protocol Buffers wire format into a growing buffer, byte for byte as protobuf-go's
    /// deterministic marshalling does. Generated code calls it; it is not safe for concurrent use, and
    /// one writer may be reused after <see cref="Reset"/>.
    /// </summary>
    public sealed class ProtoWriter
    {
        private byte[] buf;
        private int pos;

        /// <summary>Creates a writer with room for capacity bytes before it grows.</summary>
        public ProtoWriter(int capacity = 256)
        {
            buf = new byte[Math.Max(capacity, 16)];
        }

        /// <summary>Bytes written so far.</summary>
        public int Length
        {
            get { return pos; }
        }

        /// <summary>The internal buffer; its first <see cref="Length"/> bytes are the output. Valid until the next write.</summary>
        public byte[] Buffer
        {
            get { return buf; }
        }

        /// <summary>Forgets what was written, keeping the buffer.</summary>
        public void Reset()
        {
            pos = 0;
        }

        /// <summary>A copy of the bytes written.</summary>
        public byte[] ToArray()
        {
            var copy = new byte[pos];
            System.Buffer.BlockCopy(buf, 0, copy, 0, pos);
            return copy;
        }

        /// <summary>True unless value is +0.0: proto3 writes -0.0 and NaN (bit patterns other than all zero).</summary>
        public static bool NonZero(float value)
        {
            return FloatBits.ToBits(value) != 0;
        }

        /// <summary>True unless value is +0.0: proto3 writes -0.0 and NaN (bit patterns other than all zero).</summary>
        public static bool NonZero(double value)
        {
            return BitConverter.DoubleToInt64Bits(value) != 0;
        }

        /// <summary>Writes a tag (field number &lt;&lt; 3 | wire type) as a varint.</summary>
        public void WriteTag(uint tag) { WriteVarint64(tag); }

        /// <summary>Writes a varint.</summary>
        public void WriteVarint64(ulong value)
        {
            Ensure(10);
            while (value >= 0x80)
            {
                buf[pos++] = (byte)(value | 0x80);
                value >>= 7;
            }
            buf[pos++] = (byte)value;
        }

        /// <summary>Writes an int32; a negative one takes ten bytes, as in every protobuf implementation.</summary>
        public void WriteInt32(int value) { WriteVarint64((ulong)(long)value); }

        /// <summary>Writes an int64.</summary>
        public void WriteInt64(long value) { WriteVarint64((ulong)value); }

        /// <summary>Writes a uint32.</summary>
        public void WriteUInt32(uint value) { WriteVarint64(value); }

        /// <summary>Writes a uint64.</summary>
        public void WriteUInt64(ulong value) { WriteVarint64(value); }

        /// <summary>Writes a zigzag sint32.</summary>
        public void WriteSInt32(int value) { WriteVarint64((uint)((value << 1) ^ (value >> 31))); }

        /// <summary>Writes a zigzag sint64.</summary>
        public void WriteSInt64(long value) { WriteVarint64((ulong)((value << 1) ^ (value >> 63))); }

        /// <summary>Writes a bool as 0 or 1.</summary>
        public void WriteBool(bool value) { WriteVarint64(value ? 1UL : 0UL); }

        /// <summary>Writes an enum number.</summary>
        public void WriteEnum(int value) { WriteInt32(value); }

        /// <summary>Writes a little-endian fixed32.</summary>
        public void WriteFixed32(uint value)
        {
            Ensure(4);
            buf[pos] = (byte)value;
            buf[pos + 1] = (byte)(value >> 8);
            buf[pos + 2] = (byte)(value >> 16);
            buf[pos + 3] = (byte)(value >> 24);
            pos += 4;
        }

        /// <summary>Writes a little-endian fixed64.</summary>
        public void WriteFixed64(ulong value)
        {
            WriteFixed32((uint)value);
            WriteFixed32((uint)(value >> 32));
        }

        /// <summary>Writes an sfixed32.</summary>
        public void WriteSFixed32(int value) { WriteFixed32((uint)value); }

        /// <summary>Writes an sfixed64.</summary>
        public void WriteSFixed64(long value) { WriteFixed64((ulong)value); }

        /// <summary>Writes a float bit for bit.</summary>
        public void WriteFloat(float value) { WriteFixed32(FloatBits.ToBits(value)); }

        /// <summary>Writes a double bit for bit.</summary>
        public void WriteDouble(double value) { WriteFixed64((ulong)BitConverter.DoubleToInt64Bits(value)); }

        /// <summary>Writes a length-delimited UTF-8 string; null is written as "".</summary>
        /// <exception cref="ArgumentException">The string holds a lone surrogate, which UTF-8 cannot encode.</exception>
        public void WriteString(string value)
        {
            if (string.IsNullOrEmpty(value))
            {
                WriteVarint64(0);
                return;
            }
            int len = Utf8.Strict.GetByteCount(value);
            WriteVarint64((uint)len);
            Ensure(len);
            pos += Utf8.Strict.GetBytes(value, 0, value.Length, buf, pos);
        }

        /// <summary>Writes length-delimited bytes; null is written as empty.</summary>
        public void WriteBytes(byte[] value)
        {
            if (value == null)
            {
                WriteVarint64(0);
                return;
            }
            WriteVarint64((uint)value.Length);
            WriteRaw(value, 0, value.Length);
        }

        /// <summary>Writes a length-delimited message; null is written as an empty message.</summary>
        public void WriteMessage(IMessage value)
        {
            int mark = BeginLength();
            if (value != null) value.WriteTo(this);
            EndLength(mark);
        }

        /// <summary>Starts a length-delimited value (a packed field, a map entry, a message) whose length is
        /// not known yet; pass the result to <see cref="EndLength"/> after writing the value.</summary>
        public int BeginLength()
        {
            Ensure(1);
            return pos++;
        }

        /// <summary>Writes the length of the value written since <see cref="BeginLength"/> returned mark.</summary>
        public void EndLength(int mark)
        {
            int len = pos - mark - 1;
            int size = VarintSize((uint)len);
            if (size > 1)
            {
                Ensure(size - 1);
                System.Buffer.BlockCopy(buf, mark + 1, buf, mark + size, len);
                pos += size - 1;
            }
            uint v = (uint)len;
            while (v >= 0x80)
            {
                buf[mark++] = (byte)(v | 0x80);
                v >>= 7;
            }
            buf[mark] = (byte)v;
        }

        /// <summary>Writes bytes as they are.</summary>
        public void WriteRaw(byte[] src, int offset, int count)
        {
            Ensure(count);
            System.Buffer.BlockCopy(src, offset, buf, pos, count);
            pos += count;
        }

        /// <summary>Writes the unknown fields, if any.</summary>
        public void WriteUnknown(UnknownFields unknown)
        {
            if (unknown != null) unknown.WriteTo(this);
        }

        private static int VarintSize(uint v)
        {
            int n = 1;
            while (v >= 0x80)
            {
                v >>= 7;
                n++;
            }
            return n;
        }

        private void Ensure(int count)
        {
            if (buf.Length - pos >= count) return;
            long want = Math.Max((long)buf.Length * 2, (long)pos + count);
            if (want > int.MaxValue) throw new InvalidOperationException("message larger than 2 GiB");
            var grown = new byte[want];
            System.Buffer.BlockCopy(buf, 0, grown, 0, pos);
            buf = grown;
        }
    }
}
