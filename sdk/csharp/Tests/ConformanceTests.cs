using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Text;

namespace Moonforge.Tests
{
    /// <summary>
    /// The codec against tests/vectors (produced by protobuf-go): every valid vector decodes,
    /// re-encodes to the same bytes and reads as its protojson; every invalid one, and every truncation
    /// and byte flip of the valid ones, ends in a ProtoException and nothing else. Frames likewise.
    /// </summary>
    internal static class ConformanceTests
    {
        internal static int Run(string dir)
        {
            var check = new Check();
            var messages = (List<object>)MiniJson.Parse(File.ReadAllText(Path.Combine(dir, "messages.json")));
            var frames = (List<object>)MiniJson.Parse(File.ReadAllText(Path.Combine(dir, "frames.json")));
            check.True(messages.Count > 50, "messages.json has the vectors");
            foreach (Dictionary<string, object> v in messages) MessageVector(check, v);
            check.True(frames.Count > 10, "frames.json has the vectors");
            foreach (Dictionary<string, object> v in frames) FrameVector(check, v);
            Extras(check);
            return check.Finish("conformance");
        }

        private static void MessageVector(Check check, Dictionary<string, object> v)
        {
            string name = (string)v["name"];
            string type = (string)v["type"];
            byte[] bytes = FromHex((string)v["hex"]);
            IMessage m = Conformance.ConformanceMessages.Create(type);
            if (m == null)
            {
                check.Fail(name + ": no generated class for " + type);
                return;
            }
            if (!(bool)v["valid"])
            {
                try
                {
                    Proto.Merge(m, bytes, 0, bytes.Length);
                    check.Fail(name + ": invalid vector decoded without an error: " + m);
                }
                catch (ProtoException)
                {
                    check.True(true, name);
                }
                catch (Exception e)
                {
                    check.Fail(name + ": threw " + e.GetType().Name + " instead of ProtoException: " + e.Message);
                }
                return;
            }
            try
            {
                Proto.Merge(m, bytes, 0, bytes.Length);
            }
            catch (Exception e)
            {
                check.Fail(name + ": decode: " + e);
                return;
            }
            check.Equal((string)v["hex"], ToHex(Proto.Encode(m)), name + ": re-encoded bytes");
            string json = Proto.ToJson(m);
            object have;
            try
            {
                have = MiniJson.Parse(json);
            }
            catch (FormatException e)
            {
                check.Fail(name + ": ToJson wrote invalid JSON " + json + ": " + e.Message);
                return;
            }
            var diffs = new List<string>();
            JsonDiff(v["json"], have, "$", diffs);
            check.True(diffs.Count == 0, name + ": decoded values differ from the vector's json: " + string.Join("; ", diffs.ToArray()) + " (have " + json + ")");
            Mangle(check, name, type, bytes);
        }

        // Mangle decodes every truncation and many byte flips of a valid encoding: each must decode or
        // throw ProtoException, never anything else.
        private static void Mangle(Check check, string name, string type, byte[] bytes)
        {
            int bad = 0;
            string first = null;
            Action<byte[], string> attempt = (b, what) =>
            {
                try
                {
                    Proto.Merge(Conformance.ConformanceMessages.Create(type), b, 0, b.Length);
                }
                catch (ProtoException)
                {
                }
                catch (Exception e)
                {
                    bad++;
                    if (first == null) first = what + ": " + e.GetType().Name + ": " + e.Message;
                }
            };
            for (int n = 0; n < bytes.Length; n++)
            {
                var b = new byte[n];
                Buffer.BlockCopy(bytes, 0, b, 0, n);
                attempt(b, "truncated to " + n);
            }
            foreach (byte x in new byte[] { 0x01, 0x07, 0x80, 0xFF })
            {
                for (int i = 0; i < bytes.Length; i++)
                {
                    var b = (byte[])bytes.Clone();
                    b[i] ^= x;
                    attempt(b, "byte " + i + " ^ " + x);
                }
            }
            check.True(bad == 0, name + ": mangled input threw something other than ProtoException (" + bad + "x), first " + first);
        }

        private static void FrameVector(Check check, Dictionary<string, object> v)
        {
            string name = "frame " + (string)v["name"];
            byte[] bytes = FromHex((string)v["hex"]);
            Frame f;
            int used;
            if (!(bool)v["valid"])
            {
                try
                {
                    bool done = FrameCodec.TryDecodeStream(bytes, 0, bytes.Length, Frame.DefaultMaxLength, out f, out used);
                    check.Fail(name + ": accepted (complete=" + done + ")");
                }
                catch (MoonforgeException e)
                {
                    check.Equal((string)v["error"], e.CodeName, name + ": error");
                }
                catch (Exception e)
                {
                    check.Fail(name + ": threw " + e.GetType().Name + ": " + e.Message);
                }
                return;
            }
            for (int n = 0; n < bytes.Length; n++)
            {
                if (FrameCodec.TryDecodeStream(bytes, 0, n, Frame.DefaultMaxLength, out f, out used))
                {
                    check.Fail(name + ": decoded from only " + n + " bytes");
                    return;
                }
            }
            if (!FrameCodec.TryDecodeStream(bytes, 0, bytes.Length, Frame.DefaultMaxLength, out f, out used))
            {
                check.Fail(name + ": not decoded");
                return;
            }
            check.Equal(bytes.Length, used, name + ": bytes consumed");
            check.Equal((ushort)(double)v["msg_id"], f.MsgId, name + ": msg_id");
            check.Equal((ushort)(double)v["flags"], f.Flags, name + ": flags");
            check.Equal((uint)(double)v["seq"], f.Seq, name + ": seq");
            check.Equal((string)v["payload_hex"], ToHex(f.Payload), name + ": payload");
            check.Equal((string)v["hex"], ToHex(FrameCodec.EncodeStream(new Frame(f.MsgId, f.Flags, f.Seq, FromHex((string)v["payload_hex"])))), name + ": encoded");
            Frame bare = FrameCodec.DecodeBare(bytes, 4, bytes.Length - 4, Frame.DefaultMaxLength);
            check.True(bare.MsgId == f.MsgId && bare.Seq == f.Seq && ToHex(bare.Payload) == ToHex(f.Payload), name + ": bare form");
            check.Equal(ToHex(bytes).Substring(8), ToHex(FrameCodec.EncodeBare(f)), name + ": encoded bare");
        }

        // Extras are cases the vectors cannot state: map key order across surrogates, the nesting
        // limit, strings UTF-8 cannot carry, two frames in one read.
        private static void Extras(Check check)
        {
            check.True(MapKeys.String.Compare("\uE000", "\U0001F600") < 0, "map keys: U+E000 sorts before U+1F600, as in UTF-8");
            check.True(MapKeys.String.Compare("a", "ab") < 0 && MapKeys.String.Compare("b", "ab") > 0, "map keys: prefix order");

            var maps = new Conformance.Maps();
            maps.Ss["\U0001F600"] = "x";
            maps.Ss["\uE000"] = "y";
            maps.Ss[""] = "z";
            var again = new Conformance.Maps();
            byte[] enc = Proto.Encode(maps);
            Proto.Merge(again, enc, 0, enc.Length);
            check.Equal(ToHex(enc), ToHex(Proto.Encode(again)), "map with non-BMP keys round trips");
            check.True(ToHex(enc).StartsWith("0a050a0012017a", StringComparison.Ordinal) && ToHex(enc).IndexOf("0a03ee8080", StringComparison.Ordinal) < ToHex(enc).IndexOf("0a04f09f9880", StringComparison.Ordinal), "map entries sorted by UTF-8 key: " + ToHex(enc));

            var inner = new List<byte>();
            for (int depth = 0; depth < 200; depth++)
            {
                var outer = new List<byte> { 0x1a };
                outer.AddRange(Varint((ulong)inner.Count));
                outer.AddRange(inner);
                inner = outer;
            }
            try
            {
                byte[] deep = inner.ToArray();
                Proto.Merge(new Conformance.Outer.Types.Middle.Types.Inner(), deep, 0, deep.Length);
                check.Fail("200 nested messages decoded past the nesting limit");
            }
            catch (ProtoException e)
            {
                check.True(e.Message.Contains("nested"), "nesting limit: " + e.Message);
            }

            try
            {
                Proto.Encode(new Conformance.Scalars { S = "\uD800" });
                check.Fail("a lone surrogate was encoded");
            }
            catch (ArgumentException)
            {
                check.True(true, "a lone surrogate is refused on encode");
            }

            var s = new Conformance.Scalars { S = "h\u00e9llo \u4e16\u754c \U0001F600", Fl = -0f, Db = double.NaN, Color = (Conformance.Color)7 };
            var back = Proto.Decode<Conformance.Scalars>(Proto.Encode(s));
            check.True(back.S == s.S && BitConverter.DoubleToInt64Bits(back.Db) == BitConverter.DoubleToInt64Bits(double.NaN) && (int)back.Color == 7, "strings, NaN and unknown enum values survive a round trip");
            check.True(Proto.Encode(new Conformance.Scalars { Fl = -0f }).Length == 5, "float -0 is written");

            var opt = new Conformance.Optionals { I32 = 0 };
            check.True(opt.HasI32 && Proto.Encode(opt).Length == 2, "optional set to its default is written");
            opt.ClearI32();
            check.True(!opt.HasI32 && Proto.Encode(opt).Length == 0, "cleared optional is not written");

            var choice = new Conformance.Choice { Num = 0 };
            check.True(choice.PickCase == Conformance.Choice.PickOneofCase.Num && ToHex(Proto.Encode(choice)) == "1000", "oneof member at its default is written");
            choice.Text = "t";
            check.True(choice.PickCase == Conformance.Choice.PickOneofCase.Text && choice.Num == 0, "setting another oneof member replaces the first");

            var two = new List<byte>();
            two.AddRange(FrameCodec.EncodeStream(new Frame(10, 0, 1, new byte[] { 1, 2 })));
            two.AddRange(FrameCodec.EncodeStream(new Frame(11, 1, 2, null)));
            byte[] stream = two.ToArray();
            Frame f1, f2;
            int u1, u2;
            bool ok = FrameCodec.TryDecodeStream(stream, 0, stream.Length, Frame.DefaultMaxLength, out f1, out u1)
                && FrameCodec.TryDecodeStream(stream, u1, stream.Length - u1, Frame.DefaultMaxLength, out f2, out u2)
                && f1.MsgId == 10 && f2.MsgId == 11 && f2.IsReply && u1 + u2 == stream.Length;
            check.True(ok, "two frames back to back in one buffer");
            try
            {
                FrameCodec.TryDecodeStream(FromHex("0000001100"), 0, 5, 16, out f1, out u1);
                check.Fail("a frame above a custom maximum was accepted");
            }
            catch (MoonforgeException e)
            {
                check.Equal(ErrorCode.FrameTooLarge, e.Code, "custom maximum frame size");
            }
        }

        private static IEnumerable<byte> Varint(ulong v)
        {
            while (v >= 0x80)
            {
                yield return (byte)(v | 0x80);
                v >>= 7;
            }
            yield return (byte)v;
        }

        // JsonDiff compares a vector's protojson with the SDK's JSON: numbers as doubles, or as floats
        // for float fields (protojson writes those with float precision).
        private static void JsonDiff(object want, object have, string path, List<string> diffs)
        {
            var wd = want as Dictionary<string, object>;
            var wl = want as List<object>;
            if (wd != null)
            {
                var hd = have as Dictionary<string, object>;
                if (hd == null)
                {
                    diffs.Add(path + ": want an object");
                    return;
                }
                foreach (var kv in wd)
                {
                    object hv;
                    if (!hd.TryGetValue(kv.Key, out hv)) diffs.Add(path + "." + kv.Key + ": missing");
                    else JsonDiff(kv.Value, hv, path + "." + kv.Key, diffs);
                }
                foreach (var k in hd.Keys)
                {
                    if (!wd.ContainsKey(k)) diffs.Add(path + "." + k + ": unexpected");
                }
                return;
            }
            if (wl != null)
            {
                var hl = have as List<object>;
                if (hl == null || hl.Count != wl.Count)
                {
                    diffs.Add(path + ": want an array of " + wl.Count);
                    return;
                }
                for (int i = 0; i < wl.Count; i++) JsonDiff(wl[i], hl[i], path + "[" + i + "]", diffs);
                return;
            }
            if (want is double && have is double)
            {
                double a = (double)want, b = (double)have;
                if (a != b && (float)a != (float)b) diffs.Add(path + ": want " + a.ToString("R", CultureInfo.InvariantCulture) + ", have " + b.ToString("R", CultureInfo.InvariantCulture));
                return;
            }
            if (!Equals(want, have)) diffs.Add(path + ": want " + want + ", have " + have);
        }

        internal static byte[] FromHex(string hex)
        {
            var b = new byte[hex.Length / 2];
            for (int i = 0; i < b.Length; i++) b[i] = byte.Parse(hex.Substring(2 * i, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            return b;
        }

        internal static string ToHex(byte[] b)
        {
            var sb = new StringBuilder(b.Length * 2);
            foreach (byte x in b) sb.Append(x.ToString("x2", CultureInfo.InvariantCulture));
            return sb.ToString();
        }
    }
}
