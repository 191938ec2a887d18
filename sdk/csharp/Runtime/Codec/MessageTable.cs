using System;
using System.Collections.Generic;

namespace Moonforge
{
    /// <summary>
    /// The messages a client can send and receive: message id, full name, C# type and a factory,
    /// filled by the generated Register methods (no reflection). Safe for concurrent use.
    /// </summary>
    public sealed class MessageTable
    {
        private readonly object gate = new object();
        private readonly Dictionary<ushort, MessageInfo> byId = new Dictionary<ushort, MessageInfo>();
        private readonly Dictionary<Type, MessageInfo> byType = new Dictionary<Type, MessageInfo>();
        private readonly Dictionary<string, MessageInfo> byName = new Dictionary<string, MessageInfo>();

        /// <summary>A table with every message generated into this package (the framework's and proto/'s).</summary>
        public static MessageTable CreateDefault()
        {
            var t = new MessageTable();
            GeneratedMessages.RegisterAll(t);
            return t;
        }

        /// <summary>Adds a message type. Adding the same id, type and name again is a no-op.</summary>
        /// <exception cref="ArgumentException">The id or the type is already taken by another message.</exception>
        public void Add<T>(ushort id, string fullName, Func<T> factory) where T : class, IMessage
        {
            if (id == 0) throw new ArgumentException("message id 0 is invalid", "id");
            var info = new MessageInfo(id, fullName, typeof(T), factory);
            lock (gate)
            {
                MessageInfo old;
                if (byId.TryGetValue(id, out old) || byType.TryGetValue(info.Type, out old))
                {
                    if (old.Id == id && old.Type == info.Type && old.FullName == fullName) return;
                    throw new ArgumentException("message id " + id + " (" + fullName + ") clashes with " + old.Id + " (" + old.FullName + ")");
                }
                byId[id] = info;
                byType[info.Type] = info;
                byName[fullName] = info;
            }
        }

        /// <summary>The message with this id, or null.</summary>
        public MessageInfo ById(ushort id)
        {
            lock (gate)
            {
                MessageInfo info;
                return byId.TryGetValue(id, out info) ? info : null;
            }
        }

        /// <summary>The message of this C# type, or null.</summary>
        public MessageInfo ByType(Type type)
        {
            lock (gate)
            {
                MessageInfo info;
                return byType.TryGetValue(type, out info) ? info : null;
            }
        }

        /// <summary>The message with this full name ("demo.ChatSendReq"), or null.</summary>
        public MessageInfo ByName(string fullName)
        {
            lock (gate)
            {
                MessageInfo info;
                return byName.TryGetValue(fullName, out info) ? info : null;
            }
        }
    }

    /// <summary>One entry of a <see cref="MessageTable"/>. Immutable.</summary>
    public sealed class MessageInfo
    {
        private readonly Func<IMessage> factory;

        internal MessageInfo(ushort id, string fullName, Type type, Func<IMessage> factory)
        {
            Id = id;
            FullName = fullName;
            Type = type;
            this.factory = factory;
        }

        /// <summary>The message id on the wire.</summary>
        public ushort Id { get; private set; }

        /// <summary>The full proto name, e.g. "demo.ChatSendReq".</summary>
        public string FullName { get; private set; }

        /// <summary>The generated C# class.</summary>
        public Type Type { get; private set; }

        /// <summary>A new empty message of this type.</summary>
        public IMessage Create()
        {
            return factory();
        }

        /// <summary>Decodes a payload into a new message of this type.</summary>
        /// <exception cref="ProtoException">The payload is not a valid encoding.</exception>
        public IMessage Decode(byte[] payload, int offset, int count)
        {
            var m = factory();
            Proto.Merge(m, payload, offset, count);
            return m;
        }
    }
}
